"""Methods that read the model beyond the capture: CAM (the Dense kernel after global average pooling) and
Guided Grad-CAM (guided backpropagation to the input)."""

from __future__ import annotations

import cv2
import numpy as np

from camwidget.methods.registry import METHODS, MethodInputs, register
from camwidget.methods.scaling import normalize_maps

# the methods this family registers, in the order the Method dropdown lists them
NAMES = ("cam", "guided-gradcam")
FAMILY = "model-based"


@register("cam", "CAM", class_only=True)
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


@register(
    "guided-gradcam",
    "Guided Grad-CAM",
    per_channel=False,
    input_resolution=True,
    cost="2 passes",
    class_only=True,
    image_only=True,
)
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
