"""How a layer's output reads as a map: image, tokens, signal or volume, and a token layer's patch grid."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from camwidget.errors import LayerError

# Kinds of map, by the model's input and the layer's output (batch axis left out):
#   "image"  input (H, W, C),    layer (h, w, C)     -> map (h, w)
#   "tokens" input (H, W, C),    layer (T, C)        -> map (h, w): T = k + h*w, k leading tokens left out
#   "signal" input (L, C),       layer (l, C)        -> map (l,)
#   "volume" input (D, H, W, C), layer (d, h, w, C)  -> map (d, h, w)  (Conv3D, or TimeDistributed frames)
MAP_KINDS = ("image", "tokens", "signal", "volume")
_MAX_LEADING_TOKENS = 8  # class token, distillation token, a few registers


@dataclass(frozen=True)
class MapGeometry:
    """How a layer's output (N, *positions, K) is read as maps (N, *grid)."""

    kind: str  # one of MAP_KINDS
    grid: tuple[int | None, ...]  # the map's shape without N
    leading: int = 0  # tokens: special tokens (class token ...) before the grid, not part of the map

    @property
    def positions(self) -> int | None:
        """How many positions the map has; None where the size is not fixed."""
        return None if any(d is None for d in self.grid) else int(np.prod(self.grid, dtype=np.int64))

    def describe(self) -> str:
        text = "×".join("?" if d is None else str(d) for d in self.grid)
        return f"{text} (tokens, {self.leading} leading)" if self.kind == "tokens" else text


def token_grid(tokens: int, input_shape: tuple[int | None, ...]) -> tuple[int, int, int] | None:
    """(leading, h, w) for `tokens` tokens of an image input (H, W, C): the fewest leading tokens k such that
    tokens - k = h*w for a grid with the image's aspect (H/h = W/w, whole patches); None if none fits."""
    height, width = input_shape[0], input_shape[1]
    if height is None or width is None:
        return None
    for leading in range(0, min(_MAX_LEADING_TOKENS, tokens - 1) + 1):
        count = tokens - leading
        for h in range(1, count + 1):
            if count % h == 0:
                w = count // h
                if height % h == 0 and width % w == 0 and height // h == width // w:
                    return leading, h, w
    return None


def given_token_grid(
    tokens: int, input_shape: tuple[int | None, ...], grid: tuple[int, int] | None, leading_tokens: int | None
) -> MapGeometry:
    """A token layer of `tokens` tokens read on a grid the user gave, as the last h*w tokens, or after the
    `leading_tokens` they named. A grid turned on its side against the picture (its aspect the picture's
    transposed), or one that leaves more than _MAX_LEADING_TOKENS tokens before it, is refused naming the grid
    that fits, unless `leading_tokens` says how many tokens come first (the patches are laid out that way)."""
    height, width = input_shape[0], input_shape[1]
    found = token_grid(tokens, input_shape)
    fits = (
        f"the grid that fits the picture's {height}×{width} is grid=({found[1]}, {found[2]}) after {found[0]} "
        "leading token(s)"
        if found
        else f"no grid of the picture's {height}×{width} aspect fits with at most {_MAX_LEADING_TOKENS} leading tokens"
    )
    if grid is None:  # leading_tokens alone: the grid of the picture's aspect for the tokens after them
        count = tokens - leading_tokens
        for h in range(1, count + 1):
            w = count // h
            if count % h == 0 and height and width and height % h == 0 and width % w == 0 and height // h == width // w:
                return MapGeometry("tokens", (h, w), leading_tokens)
        raise LayerError(
            f"leading_tokens={leading_tokens} leaves {count} of the layer's {tokens} tokens, which make no grid of "
            f"the picture's {height}×{width} aspect; give grid=(rows, columns) too, or another count ({fits})"
        )
    h, w = grid
    if h * w > tokens:
        raise LayerError(
            f"grid {grid} has {h * w} positions, but the layer has {tokens} tokens; give a grid of at "
            f"most {tokens} positions (the tokens after the leading ones, e.g. class token); {fits}"
        )
    leading = tokens - h * w
    if leading_tokens is not None:
        if leading_tokens != leading:
            raise LayerError(
                f"grid {grid} takes the last {h * w} of the layer's {tokens} tokens, which leaves {leading} leading "
                f"tokens, but leading_tokens={leading_tokens}; give a grid of {tokens - leading_tokens} positions"
            )
        return MapGeometry("tokens", (h, w), leading)
    if leading > _MAX_LEADING_TOKENS:
        raise LayerError(
            f"grid {grid} leaves {leading} of the layer's {tokens} tokens before it, more than the "
            f"{_MAX_LEADING_TOKENS} a vision transformer has (class, distillation, register tokens); {fits}. "
            f"If the model does have {leading} leading tokens, say so: leading_tokens={leading}"
        )
    turned = height is not None and width is not None and height != width and h != w and h * height == w * width
    if turned:
        raise LayerError(
            f"grid {grid} is the picture's aspect turned on its side: the picture is {height}×{width} (height × "
            f"width), {h} rows of patches would make them {height / h:g}×{width / w:g}; {fits}. If the patches "
            f"are laid out that way, say so: grid={grid}, leading_tokens={leading}"
        )
    return MapGeometry("tokens", (h, w), leading)


def _image_like(grid: tuple[int | None, ...], image: tuple[int | None, ...]) -> bool:
    """Whether an (h, w) output can be a feature map of an (H, W) image: no larger, and shrunk by similar
    factors on both sides (an attention layer's (tokens, heads, dim) is not: 17 x 2 of a 32 x 32 image)."""
    if None in grid or None in image:
        return True
    (h, w), (height, width) = grid, image
    if h > height or w > width or h < 1 or w < 1:
        return False
    ratio = (height / h) / (width / w)
    return 1 / 4 <= ratio <= 4


def geometry_of(
    shape: tuple[int | None, ...] | None,
    input_shape: tuple[int | None, ...],
    grid: tuple[int, int] | None = None,
    leading_tokens: int | None = None,
) -> MapGeometry | None:
    """The map geometry of a layer output `shape` (no batch axis) in a model of `input_shape`; None where its
    output is no map (a vector, several tensors, a rank that does not fit the input). `grid` and
    `leading_tokens` read a token layer as given (see :func:`given_token_grid`)."""
    if shape is None:
        return None
    rank, input_rank = len(shape), len(input_shape)
    if rank == 3 and input_rank == 3:
        return MapGeometry("image", tuple(shape[:2])) if _image_like(shape[:2], input_shape[:2]) else None
    if rank == 2 and input_rank == 2:
        return MapGeometry("signal", (shape[0],))
    if rank == 4 and input_rank == 4:
        return MapGeometry("volume", tuple(shape[:3]))
    if rank == 2 and input_rank == 3 and shape[0] is not None:
        if grid is not None or leading_tokens is not None:
            return given_token_grid(int(shape[0]), input_shape, grid, leading_tokens)
        found = token_grid(int(shape[0]), input_shape)
        if found is not None:
            leading, h, w = found
            return MapGeometry("tokens", (h, w), leading)
    return None
