"""Error types and the helpers that make their messages useful."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class CAMError(ValueError):
    """A problem with what was asked of camwidget, stated so a person can fix it."""


class LayerError(CAMError):
    """The chosen layer cannot be explained: unknown, not spatial, or ambiguous."""


class ImageError(CAMError):
    """An image that cannot be used: wrong shape, wrong values, unreadable file."""


def closest(name: str, candidates: Iterable[str], n: int = 3) -> list[str]:
    """The candidates that look most like `name`, best first (matching on the full path and its last part)."""
    candidates = list(candidates)
    by_leaf = {c.rsplit("/", 1)[-1]: c for c in candidates}
    found = difflib.get_close_matches(name, candidates, n=n, cutoff=0.5)
    for leaf in difflib.get_close_matches(name.rsplit("/", 1)[-1], list(by_leaf), n=n, cutoff=0.5):
        if by_leaf[leaf] not in found:
            found.append(by_leaf[leaf])
    return found[:n]


def quoted(names: Iterable[str], limit: int = 8) -> str:
    """'a', 'b', 'c' … for messages; long lists are cut with a count of the rest."""
    names = list(names)
    shown = ", ".join(repr(n) for n in names[:limit])
    return shown + (f" … and {len(names) - limit} more" if len(names) > limit else "")
