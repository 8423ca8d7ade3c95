"""The baseline every faithfulness table needs: a map that knows nothing about the class."""

from __future__ import annotations

import numpy as np

from camwidget.methods.registry import MethodInputs, register

# the methods this family registers, in the order the Method dropdown lists them
NAMES = ("random-cam",)
FAMILY = "baseline"
SEED = 0  # the same "random" map for the same activations, every run


@register("random-cam", "Random-CAM (baseline)")
def random_cam(inputs: MethodInputs) -> np.ndarray:
    """Random-CAM (pytorch-grad-cam's RandomCAM, Gildenblat et al. 2021): w_k drawn uniformly from [-1, 1] per image and channel,
    seeded (SEED), T_k = w_k A_k. A method whose scores a metric cannot tell from this one's is not telling
    the metric anything about the class."""
    a = inputs.capture.activations
    weights = np.random.default_rng(SEED).uniform(-1.0, 1.0, (a.shape[0], 1, 1, a.shape[-1]))
    return (weights * a).astype(np.float32)
