"""The methods across their modules: those added from pytorch-grad-cam and torch-cam (gradient, activation and
baseline families) each equal an independent reference of their formula (1e-3), and every method runs in the
explorer. Each method's own formula test is in test_methods_<module>.py (gradient, perturbation, activation,
baseline, model_based, scaling, registry)."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from reference import (
    CLASSES,
    activations_and_gradients,
    assert_close,
    ref_first_component,
    relu_max,
    split,  # noqa: F401  (test_methods_added imports it from here)
)

import camwidget as cw

# -- the methods added from pytorch-grad-cam and torch-cam: each from its formula, written out here ------------


def ref_gradcam_elementwise(A, G):
    maps = []
    for a, g in zip(A, G):
        m = np.zeros(a.shape[:2])
        for c in range(a.shape[-1]):
            m += np.maximum(g[..., c] * a[..., c], 0)  # the ReLU per position and channel, before the sum
        maps.append(m)
    return relu_max(np.array(maps))


def ref_fem(A, sigmas=2.0):
    maps = []
    for a in A:
        m = np.zeros(a.shape[:2])
        for c in range(a.shape[-1]):
            channel = a[..., c]
            share = (channel > channel.mean() + sigmas * channel.std()).mean()
            m += share * channel
        maps.append(m)
    return relu_max(np.array(maps))


def ref_kpca(A):
    """First kernel principal component of the centred (h*w, K) activations, sigmoid kernel, gamma = 1/K, by
    scikit-learn (what pytorch-grad-cam's KPCA_CAM calls), signed to agree with the summed activations."""
    from sklearn.decomposition import KernelPCA

    maps = []
    for a in A:
        h, w, k = a.shape
        x = a.reshape(h * w, k) - a.reshape(h * w, k).mean(axis=0)
        p = KernelPCA(n_components=1, kernel="sigmoid").fit_transform(x)[:, 0]
        if np.dot(p, a.reshape(h * w, k).sum(axis=1)) < 0:
            p = -p
        maps.append(p.reshape(h, w))
    return relu_max(np.array(maps))


@pytest.mark.parametrize("layer", ["conv_b", "conv_c"])
def test_added_methods_match_their_formulas(model, x, layer):
    A, G = activations_and_gradients(model, layer, x, CLASSES)
    cam = lambda method: cw.compute_cam(model, x, layer=layer, method=method, class_index=CLASSES)  # noqa: E731
    assert_close(cam("gradcam-elementwise"), ref_gradcam_elementwise(A, G))
    assert_close(cam("eigen-gradcam"), relu_max(ref_first_component(A * G)))
    assert_close(cam("fem"), ref_fem(A))
    w = np.random.default_rng(0).uniform(-1, 1, (len(x), 1, 1, A.shape[-1]))
    assert_close(cam("random-cam"), relu_max((w * A).sum(-1)))
    if keras.backend.backend() == "tensorflow":  # scikit-learn comes with the peers, in the TensorFlow run
        assert_close(cam("kpca-cam"), ref_kpca(A))
    # the class matters to the gradient ones, not to the activation ones
    other = [(c + 1) % 3 for c in CLASSES]
    assert (
        np.abs(
            cam("eigen-gradcam") - cw.compute_cam(model, x, layer=layer, method="eigen-gradcam", class_index=other)
        ).max()
        > 0.01
    )
    np.testing.assert_allclose(cam("fem"), cw.compute_cam(model, x, layer=layer, method="fem", class_index=other))


# -- every method in the explorer ---------------------------------------------------------------------------------


def test_every_method_is_in_the_explorer(small, rng):
    ex = cw.CAMExplorer(small, rng.integers(0, 256, (40, 40, 3), dtype=np.uint8))
    assert [v for _, v in ex.controls["method"].options] == list(cw.METHODS)
    backend = keras.backend.backend()
    # What only the TensorFlow engine computes (guided backpropagation, a Hessian-vector product of the layers
    # after the layer, the input's gradient): refused on JAX and torch in words, the last method kept.
    tensorflow_only = {
        "guided-gradcam": f"needs the TensorFlow backend, and Keras runs on '{backend}'",
        "shapley-cam": "which needs the TensorFlow backend",
        "fullgrad": "which only the TensorFlow backend computes here",
    }
    for name in cw.METHODS:
        if name in tensorflow_only and backend != "tensorflow":
            with pytest.raises(ValueError, match=tensorflow_only[name]):
                ex.method = name
            assert tensorflow_only[name] in ex.status_text
            assert ex.method != name and ex.controls["method"].value != name
            continue
        ex.method = name
        assert np.isfinite(ex.cam).all() and ex.overlay.shape == (40, 40, 3)
        assert "✖" not in ex.status_text, ex.status_text
    ex.close()
