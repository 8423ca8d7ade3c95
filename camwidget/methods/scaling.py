"""From a method's output to maps: the sum over channels (or eigen-smoothing), the ReLU and the scaling."""

from __future__ import annotations

import numpy as np

from camwidget.methods.activation import project_first_component
from camwidget.methods.registry import CAMMethod, MethodInputs


def normalize_maps(maps: np.ndarray) -> np.ndarray:
    """ReLU, then each map (of any rank) divided by its own max; a map with no positive value stays all zero
    (never NaN)."""
    maps = np.maximum(finite(maps), 0.0)
    peak = maps.max(axis=tuple(range(1, maps.ndim)), keepdims=True)
    return np.divide(maps, peak, out=np.zeros_like(maps), where=peak > 0).astype(np.float32)


def finite(maps: np.ndarray) -> np.ndarray:
    """Maps with NaN replaced by 0 and infinities by the largest float32, so nothing non-finite escapes."""
    big = np.finfo(np.float32).max
    return np.nan_to_num(maps.astype(np.float32), nan=0.0, posinf=big, neginf=-big)


def method_maps(method: CAMMethod, inputs: MethodInputs, eigen_smooth: bool = False) -> np.ndarray:
    """Raw (N, h, w) maps of `method`; with eigen_smooth, the first principal component of the per-channel
    terms replaces their sum (pytorch-grad-cam's eigen_smooth), which removes noise the sum keeps."""
    result = method.compute(inputs)
    if not method.per_channel:
        return result
    return project_first_component(result) if eigen_smooth else result.sum(axis=-1)
