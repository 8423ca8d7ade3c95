"""camwidget.methods.activation: Eigen-CAM is the first principal component of the layer's activations, the
same map for any class."""

from __future__ import annotations

import numpy as np
from reference import as_numpy, assert_close, ref_first_component, relu_max, split

import camwidget as cw


def test_eigencam_is_the_first_principal_component(model, x):
    features, _ = split(model, "conv_b")
    A = as_numpy(features(x)).astype(np.float64)
    cam = cw.compute_cam(model, x, layer="conv_b", method="eigencam")
    assert_close(cam, relu_max(ref_first_component(A)))
    np.testing.assert_allclose(cam, cw.compute_cam(model, x, layer="conv_b", method="eigencam", class_index=[1, 1, 1]))
