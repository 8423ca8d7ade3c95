"""camwidget.methods.contrastive: Finer-CAM over Grad-CAM++ is Grad-CAM++'s formula on the gradient of
y_c - gamma * y_r (a reference class r, given as one int or a tuple), written out on A and G from a hand split of
the model. (Its Grad-CAM and Layer-CAM bases, the nearest classes and the refusals: test_methods_added.py.)"""

from __future__ import annotations

import numpy as np
import pytest
from reference import activations_and_gradients, assert_close, ref_gradcam_pp

import camwidget as cw


@pytest.mark.parametrize("layer, gamma", [("conv_b", 0.6), ("conv_c", 1.5)])
def test_finer_cam_over_gradcam_plus_plus_is_its_formula_on_the_contrasted_gradient(model, x, layer, gamma):
    classes, reference = [0, 1, 0], 2
    A, G = activations_and_gradients(model, layer, x, classes)
    _, G_reference = activations_and_gradients(model, layer, x, [reference] * len(classes))
    want = ref_gradcam_pp(A, G - gamma * G_reference)
    options = {"base": "gradcam++", "gamma": gamma}
    for references in (reference, (reference,)):
        ours = cw.compute_cam(
            model,
            x,
            layer=layer,
            class_index=classes,
            method="finer-cam",
            method_options={**options, "references": references},
        )
        assert_close(ours, want)
    plain = cw.compute_cam(model, x, layer=layer, class_index=classes, method="gradcam++")
    assert np.abs(plain - want).max() > 1e-2  # the reference class's gradient changed the map
