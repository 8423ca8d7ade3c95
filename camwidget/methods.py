"""CAM methods, registered in one place (:data:`METHODS`), which is what the explorer's dropdown lists.

Each method maps :class:`MethodInputs` (the engine's capture of A = activations (N, h, w, K) and
G = dy_c/dA, plus the model, for the methods that run it again) to either the per-channel terms
T (N, h, w, K), whose sum over k is the map, or a map (N, h, w) directly. Per-channel terms are what
eigen-smoothing projects. Maps are raw and signed; :func:`normalize_maps` applies the ReLU and the scaling.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from camwidget.engines.adapter import LayerInfo, ModelLayout
from camwidget.engines.engine import CAMEngine, LayerCapture
from camwidget.errors import CAMError, closest, quoted
from camwidget.inputs.feed import Feed

_EPS = 1e-7


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


# The gradient methods: A (N, h, w, K) activations, G = dy_c/dA, xp numpy or keras.ops (the same calls in both).


@register_formula("gradcam", "Grad-CAM")
def gradcam(a: Any, g: Any, xp: Any) -> Any:
    """Grad-CAM (Selvaraju et al. 2017): w_k = mean_ij G_k,ij;  T_k = w_k A_k.

    Weights are pooled over each image's own positions (the keras.io example also pools over the batch).
    """
    return xp.mean(g, axis=(1, 2), keepdims=True) * a


@register_formula("gradcam++", "Grad-CAM++", float64=True)
def gradcam_plus_plus(a: Any, g: Any, xp: Any) -> Any:
    """Grad-CAM++ (Chattopadhay et al. 2018), with the paper's exponential closed form:

    alpha_k,ij = G^2 / (2 G^2 + sum_ab A_k,ab G^3);  w_k = sum_ij alpha_k,ij ReLU(G_k,ij);  T_k = w_k A_k.
    As in the paper and pytorch-grad-cam; tf-keras-vis also divides alpha by its spatial sum.
    """
    g2, g3 = g * g, g * g * g
    denominator = 2 * g2 + xp.sum(a, axis=(1, 2), keepdims=True) * g3
    alpha = xp.where(g != 0, g2 / xp.where(denominator != 0, denominator, _EPS), 0.0)
    weights = xp.sum(alpha * xp.maximum(g, 0), axis=(1, 2), keepdims=True)
    return weights * a


@register_formula("hirescam", "HiResCAM")
def hirescam(a: Any, g: Any, xp: Any) -> Any:
    """HiResCAM (Draelos & Carin 2020): T_k = G_k * A_k element-wise, no pooling of the gradients,
    so the map shows exactly which positions raised the score."""
    return g * a


@register_formula("xgradcam", "XGrad-CAM", float64=True)
def xgradcam(a: Any, g: Any, xp: Any) -> Any:
    """XGrad-CAM (Fu et al. 2020): w_k = sum_ij (A_k,ij / sum_ab A_k,ab) G_k,ij;  T_k = w_k A_k."""
    weights = xp.sum(g * a, axis=(1, 2), keepdims=True) / (xp.sum(a, axis=(1, 2), keepdims=True) + _EPS)
    return weights * a


@register_formula("layercam", "Layer-CAM")
def layercam(a: Any, g: Any, xp: Any) -> Any:
    """Layer-CAM (Jiang et al. 2021): T_k = ReLU(G_k) * A_k element-wise; works at shallow layers too."""
    return xp.maximum(g, 0) * a


@register("scorecam", "Score-CAM")
def scorecam(inputs: MethodInputs) -> np.ndarray:
    """Score-CAM (Wang et al. 2020), as its authors' code does it: each channel, upsampled to the input
    and scaled to [0, 1], masks the input; w_k = p_c(X * M_k), the class probability of the masked input
    (a softmax over the classes); T_k = w_k A_k. No gradients. Masks run in batches, one forward pass each.

    `max_channels` keeps only the channels whose activations vary most over the image (the "Faster
    Score-CAM" bound that tf-keras-vis calls max_N); the others get weight 0.
    """
    c = inputs.capture
    n, h, w, k = c.activations.shape
    H, W = inputs.images.shape[1:3]
    terms = np.zeros_like(c.activations)
    for i in range(n):
        acts = c.activations[i]
        channels = np.arange(k)
        if inputs.max_channels is not None and inputs.max_channels < k:
            channels = np.argsort(-acts.reshape(-1, k).std(axis=0), kind="stable")[: inputs.max_channels]
        masks = _upsampled_unit_masks(acts[..., channels], H, W)  # (k', H, W)
        masked = inputs.images[i][None] * masks[..., None]
        probs = inputs.engine.class_probabilities(masked, inputs.output, inputs.feed, i)
        weights = probs[:, int(c.class_index[i])]
        terms[i][..., channels] = acts[..., channels] * weights
    return terms


def _upsampled_unit_masks(acts: np.ndarray, height: int, width: int) -> np.ndarray:
    """(h, w, k) -> (k, height, width): each channel resized bilinearly and scaled to [0, 1]."""
    up = np.stack(
        [cv2.resize(acts[..., j], (width, height), interpolation=cv2.INTER_LINEAR) for j in range(acts.shape[-1])]
    )
    low = up.min(axis=(1, 2), keepdims=True)
    high = up.max(axis=(1, 2), keepdims=True)
    return ((up - low) / (high - low + _EPS)).astype(np.float32)


@register("eigencam", "Eigen-CAM", per_channel=False)
def eigencam(inputs: MethodInputs) -> np.ndarray:
    """Eigen-CAM (Muhammad & Yeasin 2020): the activations' first principal component, no gradients and no
    class: map = (A - mean(A)) v_1, v_1 the first right singular vector of A as a (h*w, K) matrix.
    The matrix is centred before the SVD (as pytorch-grad-cam does; the paper does not) and
    the component's sign is chosen so the map agrees with the summed activations, since an SVD's sign
    is arbitrary."""
    return project_first_component(inputs.capture.activations)


@register("cam", "CAM")
def cam(inputs: MethodInputs) -> np.ndarray:
    """CAM (Zhou et al. 2016), for a layer followed only by GlobalAveragePooling2D and one Dense layer:
    T_k = W_k,c A_k with W the Dense kernel. (On such a model Grad-CAM is the same map.)"""
    kernel = inputs.engine.gap_dense_kernel(inputs.layer, inputs.output)
    classes = inputs.capture.class_index
    if kernel.shape[1] == 1 and inputs.layout.output_activations[inputs.output] == "sigmoid":
        weights = kernel[:, np.zeros_like(classes)].T * np.where(classes == 0, -1.0, 1.0)[:, None]  # class 0: -z
    else:
        weights = kernel[:, classes].T  # (N, K)
    return inputs.capture.activations * weights[:, None, None, :].astype(np.float32)


@register("guided-gradcam", "Guided Grad-CAM", per_channel=False, input_resolution=True)
def guided_gradcam(inputs: MethodInputs) -> np.ndarray:
    """Guided Grad-CAM (Selvaraju et al. 2017): guided backpropagation times the Grad-CAM map upsampled
    to the input, at the input's resolution. Guided backpropagation passes gradients through a ReLU only
    where both its input and the incoming gradient are positive; it is computed on a traced copy of the
    forward pass, the model untouched. The paper shows the 3-channel product; here the channels are
    combined by their L2 norm, to give one map."""
    grad_cam = normalize_maps(METHODS["gradcam"].compute(inputs).sum(axis=-1))
    H, W = inputs.images.shape[1:3]
    guided = inputs.engine.guided_gradients(
        inputs.images, inputs.capture.class_index, inputs.output, inputs.score, inputs.feed
    )
    saliency = np.sqrt((guided.astype(np.float64) ** 2).sum(axis=-1)).astype(np.float32)
    up = np.stack([cv2.resize(m, (W, H), interpolation=cv2.INTER_LINEAR) for m in grad_cam])
    return up * saliency


def project_first_component(terms: np.ndarray) -> np.ndarray:
    """Per image: the (h*w, K) matrix, centred, projected on its first right singular vector -> (h, w),
    signed to agree with the sum over K. Used by Eigen-CAM and by eigen-smoothing."""
    n, h, w, k = terms.shape
    maps = np.zeros((n, h, w), np.float32)
    for i in range(n):
        matrix = terms[i].reshape(h * w, k).astype(np.float64)
        matrix = matrix - matrix.mean(axis=0)
        if not np.any(matrix):
            continue
        _, _, vt = np.linalg.svd(matrix, full_matrices=False)
        projection = matrix @ vt[0]
        if np.dot(projection, terms[i].reshape(h * w, k).sum(axis=1)) < 0:
            projection = -projection
        maps[i] = projection.reshape(h, w)
    return maps


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
