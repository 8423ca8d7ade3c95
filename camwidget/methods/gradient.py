"""The gradient family: maps from A (N, h, w, K) activations and G = dy_c/dA alone, each a formula
T(A, G, xp) that runs in NumPy on the host and in keras.ops inside a backend's pass (xp: the same calls in both)."""

from __future__ import annotations

from typing import Any

import cv2
import keras
import numpy as np

from camwidget import progress
from camwidget.engines.base import MapsCapture, Scoring
from camwidget.errors import CAMError
from camwidget.methods.activation import project_first_component
from camwidget.methods.passes import (
    capture_at_layer,
    check_class_probabilities,
    check_class_scores,
    from_grid,
    to_grid,
)
from camwidget.methods.registry import EPS, MethodInputs, PassInputs, number_in, option, register, register_formula

# the methods this family registers, in the order the Method dropdown lists them
NAMES = (
    "gradcam",
    "gradcam++",
    "hirescam",
    "xgradcam",
    "layercam",
    "gradcam-elementwise",
    "eigen-gradcam",
    "smooth-gradcam++",
    "shapley-cam",
    "fullgrad",
)
FAMILY = "gradient"
SEED = 0  # Smooth Grad-CAM++'s noise: the same map for the same input, every run
# Smooth Grad-CAM++'s noisy images per pass: its copies go through the gradient tape together (8 copies of one
# image, the default, in one pass), at most a batch of 8 (as Score-CAM's masked inputs), so that the tape holds
# no more than compute_cam on 8 images does, however many samples of however many images
NOISY_BATCH = 8


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
    alpha = xp.where(g != 0, g2 / xp.where(denominator != 0, denominator, EPS), 0.0)
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
    weights = xp.sum(g * a, axis=(1, 2), keepdims=True) / (xp.sum(a, axis=(1, 2), keepdims=True) + EPS)
    return weights * a


@register_formula("layercam", "Layer-CAM")
def layercam(a: Any, g: Any, xp: Any) -> Any:
    """Layer-CAM (Jiang et al. 2021): T_k = ReLU(G_k) * A_k element-wise; works at shallow layers too."""
    return xp.maximum(g, 0) * a


@register_formula("gradcam-elementwise", "Grad-CAM element-wise")
def gradcam_elementwise(a: Any, g: Any, xp: Any) -> Any:
    """Grad-CAM element-wise (pytorch-grad-cam's GradCAMElementWise, Gildenblat et al. 2021): T_k = ReLU(G_k * A_k), the ReLU taken
    per position and channel before the sum over channels, so a channel that lowers the score at a position
    cannot cancel one that raises it there."""
    return xp.maximum(g * a, 0)


@register("eigen-gradcam", "Eigen-Grad-CAM", per_channel=False)
def eigen_gradcam(inputs: MethodInputs) -> np.ndarray:
    """Eigen-Grad-CAM (pytorch-grad-cam's EigenGradCAM, Gildenblat et al. 2021): Eigen-CAM of the class-weighted activations, the first
    principal component of G * A as a (h*w, K) matrix: map = (M - mean(M)) v_1, M = G * A. Signed to agree
    with the sum of G * A (an SVD's sign is arbitrary; pytorch-grad-cam leaves it to the SVD)."""
    c = inputs.capture
    return project_first_component(c.gradients.astype(np.float64) * c.activations.astype(np.float64))


@register(
    "smooth-gradcam++",
    "Smooth Grad-CAM++",
    cost="1 pass + its samples noisy copies in one batched pass",
    class_only=True,
    options={
        "samples": option(8, number_in("samples", 1, 1000, whole=True)),
        "noise": option(0.15, number_in("noise", 0.0, 10.0, low_open=True)),
    },
)
def smooth_gradcam_plus_plus(inputs: MethodInputs, samples: int, noise: float) -> np.ndarray:
    """Smooth Grad-CAM++ (Omeiza et al. 2019): Grad-CAM++ with its gradient powers averaged over n = `samples`
    noisy copies x + e_m of each image, e_m ~ N(0, s^2), s = noise * (max x - min x) of that image (SmoothGrad's
    noise level), drawn per copy for the whole batch from numpy's default_rng(SEED):
    D_p = (1/n) sum_m (G_m)^p;  alpha_k,ij = D_2 / (2 D_2 + sum_ab A_k,ab D_3);  w_k = sum_ij alpha_k,ij ReLU(D_1);
    T_k = w_k A_k with A the clean image's activations. Averaging the gradients removes the noise of a single
    backward pass that makes Grad-CAM++'s maps speckled. The copies go through the gradient tape together
    (NOISY_BATCH images a pass), so the method costs what its batched passes cost. torch-cam 0.5 takes ReLU of
    the last copy's gradient where the paper (and camwidget) take the mean D_1, sum_ab (A D_3)_k,ab in alpha's
    denominator, the last noisy copy's activations for the map, and an absolute noise std (0.3)
    (tests/test_methods_peers.py compares the two on the same noise)."""
    check_class_scores(inputs, "Smooth Grad-CAM++")
    x = inputs.images.astype(np.float64)
    n = len(x)
    axes = tuple(range(1, x.ndim))
    spread = (x.max(axis=axes) - x.min(axis=axes)).reshape(-1, *[1] * (x.ndim - 1))
    rng = np.random.default_rng(SEED)
    per_pass = max(1, NOISY_BATCH // n)  # whole noisy copies of the batch per pass
    d1, d2, d3 = (np.zeros(inputs.capture.gradients.shape) for _ in range(3))
    for start in range(0, samples, per_pass):
        progress.step(start, samples, "noisy copies")
        m = min(per_pass, samples - start)
        noisy = x[None] + rng.standard_normal((m, *x.shape)) * noise * spread[None]  # copy-major, as drawn one by one
        classes = np.tile(inputs.capture.class_index, m)
        g = capture_at_layer(inputs, noisy.reshape(m * n, *x.shape[1:]), classes, m).gradients.astype(np.float64)
        g = g.reshape(m, n, *g.shape[1:])
        d1 += g.sum(axis=0)
        d2 += (g * g).sum(axis=0)
        d3 += (g * g * g).sum(axis=0)
    d1, d2, d3 = d1 / samples, d2 / samples, d3 / samples
    a = inputs.capture.activations.astype(np.float64)
    denominator = 2 * d2 + a.sum(axis=(1, 2), keepdims=True) * d3
    alpha = np.where(d2 != 0, d2 / np.where(denominator != 0, denominator, EPS), 0.0)
    weights = (alpha * np.maximum(d1, 0)).sum(axis=(1, 2), keepdims=True)
    return (weights * a).astype(np.float32)


@register("shapley-cam", "Shapley-CAM", cost="1 pass + a Hessian-vector product of the layers after the layer")
def shapley_cam(inputs: MethodInputs) -> np.ndarray:
    """Shapley-CAM (Cai 2025, "CAMs as Shapley value-based explainers"): the channel weights of a second-order
    Taylor estimate of each channel's Shapley value, w_k = mean_ij (G - (1/2) H A)_k,ij with H A the
    Hessian-vector product of y_c at the layer in the direction of A (d/dA of G . A, A held fixed in the
    product); T_k = w_k A_k. The paper scores with ReST (score="rest", z_c + log p_c); under "auto" on a
    network of ReLUs after the layer y_c is piecewise linear in A, H A = 0 and the map is Grad-CAM's.
    As pytorch-grad-cam's ShapleyCAM. The product runs the layers after the layer (TensorFlow backend).

    Raises:
        CAMError: the model does not show its layers after the layer (subclassed, a layer used twice, several
            inputs), or Keras does not run on TensorFlow.
    """
    check_class_scores(inputs, "Shapley-CAM")
    got = None
    if inputs.feed is None:
        a = from_grid(inputs.capture.activations, inputs, "Shapley-CAM")
        got = inputs.engine.tail_hessian_vector(
            a.astype(np.float32), inputs.layer, inputs.capture.class_index.astype(np.int32), inputs.output, inputs.score
        )
    if got is None:
        raise CAMError(
            f"Shapley-CAM differentiates the layers after {inputs.layer.path!r} twice, which needs the TensorFlow "
            "backend and a model that shows those layers (not subclassed, no layer used twice, one input); "
            "use 'gradcam', its first-order part"
        )
    g, hv = (to_grid(t, inputs).astype(np.float64) for t in got)
    weights = (g - 0.5 * hv).mean(axis=(1, 2), keepdims=True)
    return (weights * inputs.capture.activations.astype(np.float64)).astype(np.float32)


def fullgrad_pass(inputs: PassInputs) -> MapsCapture:
    """FullGrad's one pass (see :func:`fullgrad`): a forward and a backward that reaches the input, each layer's
    psi-summed bias-gradient map and the input-gradient's made in the graph; only those leave the pass, and
    are resized here.

    Args:
        inputs: the images, their classes and the model's engine.

    Returns:
        The maps at the input's resolution (N, H, W), with the pass's probabilities and classes.

    Raises:
        CAMError: as :func:`fullgrad`.
    """
    x = inputs.images
    if x.ndim != 4:
        raise CAMError("FullGrad makes a map at the input's resolution, so it works on image models (N, H, W, C)")
    layers = [info for info in inputs.layout.layers.values() if _has_fullgrad_bias(info)]
    if not layers:
        raise CAMError(
            "FullGrad adds up the gradients of the biases of the model's convolutions and batch normalisations, "
            "and this model has none with a bias; use 'gradcam'"
        )
    for info in layers:
        name = getattr(getattr(info.layer, "activation", None), "__name__", "linear")
        if name not in ("linear", "relu"):
            raise CAMError(
                f"FullGrad needs the gradient before layer {info.path!r}'s activation, and its fused {name!r} "
                "cannot be undone from its output (only linear and relu can); use 'gradcam'"
            )
    spec = Scoring(inputs.classes.astype(np.int32), inputs.output, inputs.score, None, inputs.feed)
    got = inputs.engine.capture_with_input_gradient(x, layers, _fullgrad_term, spec)
    if got is None:
        raise CAMError("FullGrad needs the input's gradient, which only the TensorFlow backend computes here")
    per_layer, total, probabilities, classes = got
    check_class_probabilities(probabilities, "FullGrad")
    H, W = x.shape[1:3]
    total = total.astype(np.float64)
    for summed in per_layer.values():  # bilinear resizing is linear: each layer's channel sum resized once
        total += summed if summed.shape[1:] == (H, W) else np.stack([cv2.resize(m, (W, H)) for m in summed])
    return MapsCapture(total.astype(np.float32), probabilities, classes)


@register(
    "fullgrad",
    "FullGrad",
    per_channel=False,
    input_resolution=True,
    class_only=True,
    image_only=True,
    cost="1 pass, its backward to the input",
    own_pass=fullgrad_pass,
)
def fullgrad(inputs: MethodInputs) -> np.ndarray:
    """FullGrad (Srinivas & Fleuret 2019), as pytorch-grad-cam's FullGrad: at the input's resolution,
    map = sum_c psi(|dy/dx_c * x_c|) + sum_l sum_k psi(|b_l,k * dy/dz_l,k|), with z_l the output of layer l
    before its activation, b_l its bias (a batch normalisation's effective bias beta - mu gamma / sqrt(var + eps)),
    and psi a channel's map shifted to 0, divided by (1e-7 + its max) and resized bilinearly to the input
    (pytorch-grad-cam's scale_accross_batch_and_channels). Every convolution and batch normalisation with a bias
    on the way to the output counts, whatever layer is chosen: the bias-gradients are the part of the score a
    plain input-gradient misses (the paper's completeness). Dense layers' biases have no position and are left
    out, as in the paper's saliency map. dy/dz of a layer with a fused ReLU is dy/da where a > 0, 0 elsewhere.
    It needs no capture of the chosen layer: compute_cam runs only its own pass (:func:`fullgrad_pass`).

    Raises:
        CAMError: the model has no convolution or batch normalisation with a bias; a layer with a bias has a
            fused activation other than ReLU (z cannot be read from its output); the model is not an image
            model; Keras does not run on TensorFlow.
    """
    c = inputs.capture
    return fullgrad_pass(
        PassInputs(inputs.images, c.class_index, inputs.engine, inputs.layout, inputs.output, inputs.score, inputs.feed)
    ).maps


def _fullgrad_term(info: Any, a: Any, g: Any) -> Any:
    """Inside FullGrad's pass: (N, h, w) sum_k psi_k(|b_k * dy/dz_k|) of a layer (psi before the resize), or of
    the input (info None; a = x, g = dy/dx) sum_c psi_c(|dy/dx_c * x_c|). Bilinear resizing is linear and every
    channel of a layer has the same size, so the channels are summed before the one resize (the same map up to
    rounding; one resize a layer instead of one a channel, 4,224 on VGG16).

    With t_k = |b_k| u_k, u = |dy/dz|: psi_k(t_k) = (u_k - min u_k) s_k, s_k = |b_k| / (1e-7 + |b_k| (max u_k -
    min u_k)), so the sum over k is one product u s minus a constant, and the layer's map is read 4 times rather
    than 9 (the reductions' share of the pass on VGG16, about a quarter of a forward pass, halved)."""
    ops = keras.ops
    if info is None:
        u, scale = ops.abs(g * a), 1.0
    else:
        relu = getattr(getattr(info.layer, "activation", None), "__name__", "linear") == "relu"
        u = ops.where(a > 0, ops.abs(g), 0.0) if relu else ops.abs(g)
        scale = ops.abs(_fullgrad_bias(info.layer))
    low, high = ops.min(u, axis=(1, 2)), ops.max(u, axis=(1, 2))  # (N, K)
    s = scale / (1e-7 + scale * (high - low))
    return ops.einsum("nhwk,nk->nhw", u, s) - ops.sum(low * s, axis=-1)[:, None, None]


def _has_fullgrad_bias(info: Any) -> bool:
    """Whether FullGrad counts the layer: a convolution with a bias or a batch normalisation, on an image map
    that reaches the output, called once."""
    layer = info.layer
    if info.geometry is None or info.geometry.kind != "image" or info.calls != 1 or not info.reaches_output:
        return False
    if isinstance(layer, keras.layers.BatchNormalization):
        return True
    convolutions = (keras.layers.Conv2D, keras.layers.DepthwiseConv2D, keras.layers.SeparableConv2D)
    return isinstance(layer, convolutions) and bool(getattr(layer, "use_bias", False))


def _fullgrad_bias(layer: Any) -> Any:
    """The bias a FullGrad layer adds per channel (float32), read from its variables inside the pass, so a
    trained model's new values are the ones used."""

    def value(variable: Any) -> Any:
        return keras.ops.cast(variable, "float32")

    if isinstance(layer, keras.layers.BatchNormalization):
        gamma = value(layer.gamma) if layer.scale else 1.0
        beta = value(layer.beta) if layer.center else 0.0
        return beta - value(layer.moving_mean) * gamma / keras.ops.sqrt(value(layer.moving_variance) + layer.epsilon)
    return value(layer.bias)
