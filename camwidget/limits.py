"""Numbers that mean one thing everywhere, defined once (no imports: the command line reads them before Keras)."""

MAX_SIDE = 1024  # px: a picture for a model that takes any size is at most this long on its longer side
MAX_PIXELS = 50_000_000  # a picture larger than this is refused before it is decoded
DISPLAY_SIDE = 1024  # px: the on-screen overlay's longer side, at most (a slider move costs the same for any picture)
