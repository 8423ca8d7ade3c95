"""What a model is, said wherever its maps are shown: a note a model carries (a random-weights stand-in) or
that the user gives, so that no label claims more than is true."""

from __future__ import annotations

from typing import Any

STAND_IN = "random weights: maps show how the tool works, not what a trained model sees"
CHANGED_STAND_IN = (
    "a random-weights stand-in whose weights have changed since (trained or loaded): maps show them as they are"
)
_ATTRIBUTE = "camwidget_note"


def mark(model: Any, note: str = STAND_IN) -> None:
    """Attach `note` to a model camwidget made itself (the demo's random-weights stand-in)."""
    object.__setattr__(model, _ATTRIBUTE, note)  # plain attribute: Keras does not track it as state


def note_of(model: Any, given: str | None = None) -> str | None:
    """The note to show for `model`: `given` (``CAMExplorer(..., note=...)``), else the one it carries."""
    if given is not None:
        if not isinstance(given, str):
            raise TypeError(f"note must be a string, not {type(given).__name__}")
        return given.strip() or None
    note = getattr(model, _ATTRIBUTE, None)
    return note if isinstance(note, str) and note else None


def titled(title: str, note: str | None) -> str:
    """A figure's title with the model's note under it, so a picture saved alone still says what it shows."""
    return title if not note else f"{title}\n({note})"
