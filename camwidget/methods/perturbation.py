"""The perturbation family: channels weighed by the class score of the input they mask (no gradients)."""

from __future__ import annotations

import cv2
import numpy as np

from camwidget.methods.registry import EPS, MethodInputs, register

# the methods this family registers, in the order the Method dropdown lists them
NAMES = ("scorecam",)


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
    return ((up - low) / (high - low + EPS)).astype(np.float32)
