"""camwidget.methods.baseline: Random-CAM is the same map every time, and unlike the class's Grad-CAM."""

from __future__ import annotations

import numpy as np

import camwidget as cw


def test_random_cam_is_the_same_every_time_and_unlike_the_class_maps(model, x):
    first = cw.compute_cam(model, x, layer="conv_b", method="random-cam")
    np.testing.assert_array_equal(first, cw.compute_cam(model, x, layer="conv_b", method="random-cam"))
    assert np.abs(first - cw.compute_cam(model, x, layer="conv_b", method="gradcam")).max() > 0.05
