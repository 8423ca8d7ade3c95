"""CAM methods: pure functions from a :class:`~camwidget.engine.LayerCapture` to raw maps (N, h, w).

Raw maps are signed, before any ReLU; :func:`normalize_maps` applies the ReLU and scales each map to [0, 1].
Methods register themselves in :data:`METHODS`, which is what the explorer's Method dropdown lists.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .engine import LayerCapture
from .errors import CAMError, closest, quoted

MapFunction = Callable[[LayerCapture], np.ndarray]


@dataclass(frozen=True)
class CAMMethod:
    name: str  # what compute_cam(method=...) takes
    label: str  # what the dropdown shows
    compute: MapFunction


METHODS: dict[str, CAMMethod] = {}


def register(name: str, label: str) -> Callable[[MapFunction], MapFunction]:
    def add(fn: MapFunction) -> MapFunction:
        METHODS[name] = CAMMethod(name, label, fn)
        return fn

    return add


def get_method(name: str) -> CAMMethod:
    if not isinstance(name, str):
        raise TypeError(f"method must be a method name such as 'gradcam', not {type(name).__name__}")
    method = METHODS.get(name.lower())
    if method is None:
        hint = closest(name.lower(), METHODS)
        raise CAMError(
            f"method {name!r} is not known"
            + (f"; did you mean {quoted(hint)}?" if hint else "")
            + f" Available: {quoted(METHODS)}"
        )
    return method


@register("gradcam", "Grad-CAM")
def gradcam(capture: LayerCapture) -> np.ndarray:
    """Grad-CAM (Selvaraju et al. 2017): w_k = mean_{i,j} dy_c/dA_k[i,j];  map = sum_k w_k A_k.

    Weights are pooled over each image's own positions (the keras.io example also pools over the batch).
    Returned before the ReLU of the paper; :func:`normalize_maps` applies it.
    """
    weights = capture.gradients.mean(axis=(1, 2), dtype=np.float64)  # (N, K)
    return np.einsum("nhwk,nk->nhw", capture.activations, weights.astype(np.float32))


def normalize_maps(maps: np.ndarray) -> np.ndarray:
    """ReLU, then each map divided by its own max; a map with no positive value stays all zero (never NaN)."""
    maps = np.maximum(finite(maps), 0.0)
    peak = maps.max(axis=(1, 2), keepdims=True)
    return np.divide(maps, peak, out=np.zeros_like(maps), where=peak > 0).astype(np.float32)


def finite(maps: np.ndarray) -> np.ndarray:
    """Maps with NaN replaced by 0 and infinities by the largest float32, so nothing non-finite escapes."""
    return np.nan_to_num(maps.astype(np.float32), nan=0.0, posinf=np.finfo(np.float32).max, neginf=np.finfo(np.float32).min)
