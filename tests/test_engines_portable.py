"""camwidget.engines.portable: the JAX and torch engine's capture (A, dy_c/dA at two layers, the scores, the
classes) and its maps made inside the pass, against a hand split of the model differentiated by the backend's
own autodiff. Run by test_backends.py's JAX and torch runs."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from keras import ops
from reference import chain, dense_logits, gradient

from camwidget.engines import engine_for
from camwidget.engines.portable import PortableEngine
from camwidget.methods import gradient as gradient_methods

pytestmark = pytest.mark.backends("jax", "torch")


def test_the_capture_and_the_maps_in_the_pass_equal_the_hand_split(small, rng):
    x = rng.uniform(0, 1, (3, 32, 32, 3)).astype("float32")
    engine = engine_for(small)
    assert isinstance(engine, PortableEngine) and engine.backend == keras.backend.backend()
    layout = engine.layout(x.shape[1:])
    infos = [layout.resolve("conv_a"), layout.resolve("conv_b")]
    capture = engine.capture(x, infos, np.array([2, -1, 0], np.int32), 0, "auto")
    L = small.get_layer
    logits = chain(L("gap"), lambda h: dense_logits(L("dense"), h))
    A = keras.Model(small.input, L("conv_b").output)(x)
    z = ops.convert_to_numpy(logits(A))
    classes = [2, int(np.argmax(z[1])), 0]
    G = gradient(lambda a: ops.sum(ops.sum(logits(a) * ops.one_hot(np.array(classes), 3), axis=1)), A)
    np.testing.assert_array_equal(capture.class_index, classes)
    np.testing.assert_allclose(capture.scores, z, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(capture.probabilities, ops.convert_to_numpy(small(x)), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(capture.activations["conv_b"], ops.convert_to_numpy(A), rtol=1e-5, atol=1e-6)
    assert np.abs(G).max() > 0
    np.testing.assert_allclose(capture.gradients["conv_b"], G, rtol=1e-4, atol=1e-4 * np.abs(G).max())
    conv_a = keras.Model(small.input, L("conv_a").output)(x)
    np.testing.assert_allclose(capture.activations["conv_a"], ops.convert_to_numpy(conv_a), rtol=1e-5, atol=1e-6)
    maps = engine.capture_maps(x, infos[1], np.array(classes, np.int32), 0, "auto", gradient_methods.gradcam)
    want = (ops.convert_to_numpy(A) * G.mean(axis=(1, 2), keepdims=True)).sum(-1)
    np.testing.assert_allclose(maps.maps, want, rtol=1e-4, atol=1e-4 * np.abs(want).max())
    assert maps.input_finite and list(maps.class_index) == classes
