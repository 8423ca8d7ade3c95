"""The one registry of CAM methods (:data:`METHODS`, what the explorer's Method dropdown lists) and what a
method is given.

Each method maps :class:`MethodInputs` (the engine's capture of A = activations (N, h, w, K) and
G = dy_c/dA, plus the model, for the methods that run it again) to either the per-channel terms
T (N, h, w, K), whose sum over k is the map, or a map (N, h, w) directly. Per-channel terms are what
eigen-smoothing projects. Maps are raw and signed; :func:`camwidget.methods.scaling.normalize_maps` applies
the ReLU and the scaling.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from camwidget.engines import CAMEngine, LayerCapture, LayerInfo, ModelLayout
from camwidget.errors import CAMError, closest, quoted
from camwidget.inputs.feed import Feed

EPS = 1e-7


@dataclass
class MethodInputs:
    capture: LayerCapture
    images: np.ndarray  # (N, H, W, C) model input
    engine: CAMEngine
    layer: LayerInfo
    layout: ModelLayout
    output: int
    score: str
    max_channels: int | None = None  # Score-CAM: use at most this many channels
    feed: Feed | None = None  # a model's other inputs, where it has several


Formula = Callable[[Any, Any, Any], Any]  # (A, G, xp) -> per-channel terms T, xp: numpy or keras.ops


@dataclass(frozen=True)
class CAMMethod:
    name: str  # what compute_cam(method=...) takes
    label: str  # what the dropdown shows
    compute: Callable[[MethodInputs], np.ndarray]
    per_channel: bool  # compute returns terms (N, h, w, K); else a map (N, h, w)
    input_resolution: bool = False  # the map is at the model input's resolution, not the layer's
    formula: Formula | None = None  # the gradient methods: T from (A, G) alone, in numpy or keras.ops, so that
    # the backend can compute the maps inside its own pass and hand back only them (compute_cam on a GPU)


METHODS: dict[str, CAMMethod] = {}


def register(name: str, label: str, per_channel: bool = True, input_resolution: bool = False):
    def add(fn: Callable[[MethodInputs], np.ndarray]) -> Callable[[MethodInputs], np.ndarray]:
        METHODS[name] = CAMMethod(name, label, fn, per_channel, input_resolution)
        return fn

    return add


class _HostNumPy:
    """NumPy as the formulas read it on the host: sums and means accumulate in float64 and keep the arrays'
    dtype, so float32 A and G need no float64 copies."""

    maximum = staticmethod(np.maximum)
    where = staticmethod(np.where)

    @staticmethod
    def mean(x: np.ndarray, axis: Any = None, keepdims: bool = False) -> np.ndarray:
        return np.mean(x, axis=axis, keepdims=keepdims, dtype=np.float64).astype(x.dtype)

    @staticmethod
    def sum(x: np.ndarray, axis: Any = None, keepdims: bool = False) -> np.ndarray:
        return np.sum(x, axis=axis, keepdims=keepdims, dtype=np.float64).astype(x.dtype)


def register_formula(name: str, label: str, float64: bool = False):
    """A gradient method given by its formula T(A, G, xp); on the host it runs in NumPy on float32 A and G
    (reductions in float64), or on float64 copies where the formula divides or cubes (`float64`). The copies
    cost about 10x on a shallow layer, where the explorer's method and class switches run the formula."""

    def add(formula: Formula) -> Formula:
        def compute(inputs: MethodInputs) -> np.ndarray:
            a, g = inputs.capture.activations, inputs.capture.gradients
            if float64:
                return formula(a.astype(np.float64), g.astype(np.float64), np).astype(np.float32)
            return formula(a, g, _HostNumPy).astype(np.float32, copy=False)

        compute.__doc__ = formula.__doc__
        METHODS[name] = CAMMethod(name, label, compute, per_channel=True, formula=formula)
        return formula

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
            + f" Available: {quoted(METHODS, limit=20)}"
        )
    return method
