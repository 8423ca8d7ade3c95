"""camwidget.methods.scaling: eigen_smooth replaces the sum over channels by the first principal component of
the per-channel terms."""

from __future__ import annotations

import numpy as np
import pytest
from reference import CLASSES, activations_and_gradients, assert_close, ref_first_component, relu_max

import camwidget as cw


@pytest.mark.parametrize("method", ["gradcam", "layercam"])
def test_eigen_smooth_projects_the_per_channel_terms(model, x, method):
    A, G = activations_and_gradients(model, "conv_b", x, CLASSES)
    terms = A * G.mean(axis=(1, 2), keepdims=True) if method == "gradcam" else np.maximum(G, 0) * A
    cam = cw.compute_cam(model, x, layer="conv_b", method=method, class_index=CLASSES, eigen_smooth=True)
    assert_close(cam, relu_max(ref_first_component(terms)))
