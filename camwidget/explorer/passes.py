"""What the explorer keeps of its passes per (image, class, score), how much of the capture budget a layer
takes, and what a blank map means in words."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from camwidget.engines import LayerCapture, LayerInfo


@dataclass
class Passes:
    """What passes gave for one (image, class): each layer's gradients, from one or more passes."""

    gradients: dict[str, np.ndarray]
    scores: np.ndarray
    probabilities: np.ndarray
    class_index: np.ndarray
    unreported_seconds: float  # a pass run to find the top class, reported with the view that uses it
    reached_all: bool = False  # a pass reached every spatial layer (the budget allowing)
    warmed: frozenset[str] = frozenset()  # the layers whose gradients the background warm-up pass gave

    def source(self, path: str) -> str:
        """Where the layer's activations and gradients came from, as the status line says it."""
        return "from the warm-up pass's gradients" if path in self.warmed else "from an earlier pass's gradients"

    @property
    def nbytes(self) -> int:
        return sum(g.nbytes for g in self.gradients.values())


def capture_nbytes(info: LayerInfo) -> int:
    """Bytes of one image's activations and gradients at a layer (float32)."""
    return 2 * 4 * int(np.prod([d or 1 for d in info.shape]))


def within_budget(layers: list[LayerInfo], must: LayerInfo, budget: int) -> list[LayerInfo]:
    """`layers` (forward order) cut to what fits `budget` bytes of activations and gradients, keeping `must`
    and the layers nearest after it first."""
    size = capture_nbytes
    kept, used = [must], size(must)
    rest = sorted(
        (i for i in layers if i.path != must.path), key=lambda i: (i.order < must.order, abs(i.order - must.order))
    )
    for info in rest:
        if used + size(info) <= budget:
            kept.append(info)
            used += size(info)
    return sorted(kept, key=lambda i: i.order)


def diagnose(
    capture: LayerCapture, raw: np.ndarray, info: LayerInfo, class_names: list[str], per_position: bool
) -> str | None:
    """Plain words for a map that is blank, naming why (no pixel of the class, vanished gradients, a dead
    layer, no positive evidence); None for a map with something to show.

    Args:
        capture: the one picture's capture the map was made from.
        raw: the method's map before ReLU (h, w).
        info: the layer.
        class_names: the names the explorer shows.
        per_position: the output scores classes per pixel (a segmentation).
    """
    name = class_names[int(capture.class_index[0])]
    if per_position and capture.probabilities[0, int(capture.class_index[0])] == 0:
        return f"no pixel of this image is predicted as '{name}', so there is no region to explain"
    if not np.any(capture.gradients):
        return (
            f"gradients vanished at {info.path}: the score for '{name}' does not change with this layer "
            "(dead or saturated units); try a later layer"
        )
    if not np.any(capture.activations):
        return f"layer {info.path} is all zero for this image, so there is nothing to weight"
    if raw.max() <= 0:
        return f"no positive evidence for '{name}' at {info.path}: every location lowers its score"
    return None
