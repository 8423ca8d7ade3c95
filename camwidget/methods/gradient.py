"""The gradient family: maps from A (N, h, w, K) activations and G = dy_c/dA alone, each a formula
T(A, G, xp) that runs in NumPy on the host and in keras.ops inside a backend's pass (xp: the same calls in both)."""

from __future__ import annotations

from typing import Any

import numpy as np

from camwidget.methods.activation import project_first_component
from camwidget.methods.registry import EPS, MethodInputs, register, register_formula

# the methods this family registers, in the order the Method dropdown lists them
NAMES = ("gradcam", "gradcam++", "hirescam", "xgradcam", "layercam", "gradcam-elementwise", "eigen-gradcam")
FAMILY = "gradient"


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
