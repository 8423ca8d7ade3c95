"""camwidget.methods.gradient: Grad-CAM++, HiResCAM, XGrad-CAM and Layer-CAM each equal their formula written
out per image and channel on A and G from a plain GradientTape (a hand split of the model) within 1e-3, differ
from each other where the gradients vary, and agree with tf-keras-vis where its definitions do."""

from __future__ import annotations

import numpy as np
import pytest
from reference import (
    CLASSES,
    TOL,
    activations_and_gradients,
    assert_close,
    ref_gradcam_pp,
    relu_max,
    tf_keras_vis_map,
)

import camwidget as cw


def ref_hirescam(A, G):
    return relu_max((A * G).sum(-1))


def ref_xgradcam(A, G):
    maps = []
    for a, g in zip(A, G):
        w = [(g[..., c] * a[..., c]).sum() / (a[..., c].sum() + 1e-7) for c in range(a.shape[-1])]
        maps.append((a * np.array(w)).sum(-1))
    return relu_max(np.array(maps))


def ref_layercam(A, G):
    return relu_max((np.maximum(G, 0) * A).sum(-1))


@pytest.mark.parametrize(
    "method, reference",
    [("gradcam++", ref_gradcam_pp), ("hirescam", ref_hirescam), ("xgradcam", ref_xgradcam), ("layercam", ref_layercam)],
)
@pytest.mark.parametrize("layer", ["conv_b", "conv_c"])
def test_gradient_methods_match_their_formulas(model, x, method, reference, layer):
    A, G = activations_and_gradients(model, layer, x, CLASSES)
    assert_close(cw.compute_cam(model, x, layer=layer, method=method, class_index=CLASSES), reference(A, G))


def test_methods_differ_where_gradients_vary(model, x):
    """On a Flatten head the gradient methods are not one method in disguise."""
    maps = {
        m: cw.compute_cam(model, x, layer="conv_b", method=m, class_index=CLASSES)
        for m in ("gradcam", "gradcam++", "hirescam", "xgradcam", "layercam")
    }
    names = list(maps)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            assert np.abs(maps[a] - maps[b]).max() > 0.05, (a, b)


@pytest.mark.tensorflow_only
def test_layercam_matches_tf_keras_vis(model, x):
    from tf_keras_vis.layercam import Layercam

    peer = tf_keras_vis_map(model, Layercam, "conv_b", x, CLASSES)
    assert_close(cw.compute_cam(model, x, layer="conv_b", method="layercam", class_index=CLASSES), peer)


@pytest.mark.tensorflow_only
def test_gradcam_plus_plus_vs_tf_keras_vis_differs_only_by_alpha_renormalisation(model, x):
    """tf-keras-vis divides alpha by its spatial sum (a departure from the paper); with that change our
    reference formula gives its map, and without it, ours."""
    from tf_keras_vis.gradcam_plus_plus import GradcamPlusPlus

    peer = tf_keras_vis_map(model, GradcamPlusPlus, "conv_b", x, CLASSES)
    A, G = activations_and_gradients(model, "conv_b", x, CLASSES)
    renormalised = []
    for a, g in zip(A, G):
        denom = 2 * g**2 + a.sum(axis=(0, 1)) * g**3
        alpha = np.where(g != 0, g**2 / np.where(denom != 0, denom, 1), 0)
        alpha = alpha / np.where(alpha.sum(axis=(0, 1)) != 0, alpha.sum(axis=(0, 1)), 1)
        renormalised.append((a * (alpha * np.maximum(g, 0)).sum(axis=(0, 1))).sum(-1))
    np.testing.assert_allclose(peer, relu_max(np.array(renormalised)), atol=TOL)
    ours = cw.compute_cam(model, x, layer="conv_b", method="gradcam++", class_index=CLASSES)
    assert_close(ours, ref_gradcam_pp(A, G))
    assert np.abs(ours - peer).max() > 0.01
