"""camwidget.engines.base: the abstract Engine declares each pass once and cannot run one itself; its
recapture (a class switch from the activations already captured) equals a full capture, and says None where the
model shows no graph to run the layers after the layer."""

from __future__ import annotations

import keras
import models
import numpy as np
import pytest

import camwidget.engines as engines
from camwidget.engines import engine_for
from camwidget.engines.base import Engine


def test_the_base_declares_the_passes_and_cannot_run_one():
    """Each pass is declared once, with its signature and docstring, in the base; the engines write their own
    ``_capture``, ``_recapture`` and ``_perturbed_scores``, which take the request's fields whole."""
    passes = {"_capture", "_recapture", "class_probabilities", "_perturbed_scores", "guided_gradients", "_describe"}
    assert passes <= Engine.__abstractmethods__
    for public in ("capture", "recapture", "perturbed_scores"):
        assert public in vars(Engine) and all(
            public not in vars(e) for e in (engines.TensorFlowEngine, engines.PortableEngine)
        )
    with pytest.raises(TypeError, match="abstract"):
        Engine(models.small_cnn(name="abstract"))


@pytest.mark.parametrize(
    "make, layer",
    [
        (models.vgg_composite_nested, "vgg16/block5_conv3"),
        (models.vgg_composite_nested, "head/head_conv"),
        (models.vgg_composite_input_tensor, "block4_conv3"),
        (models.sequential_cnn, "s_conv_a"),
        (models.nested_three_deep, "middle/inner/deep_conv"),
        (lambda: keras.applications.ResNet50(weights=None, input_shape=(64, 64, 3), classes=4), "conv5_block1_out"),
    ],
)
def test_class_switch_from_cached_activations_equals_full_pass(make, layer, rng):
    model = make()
    size = model.input_shape[1]
    engine = engine_for(model)
    x = rng.uniform(0, 255, (2, size, size, 3)).astype("float32")
    layout = engine.layout(x.shape[1:])
    info = layout.resolve(layer)
    first = engine.capture(x, [info], np.array([0, 1], np.int32), 0, "auto").at(info.path)
    for classes in ([1, 0], [2, 1], [-1, 2]):
        classes = np.array(classes, np.int32)
        full = engine.capture(x, [info], classes, 0, "auto").at(info.path)
        fast = engine.recapture(first.activations, info, classes, 0, "auto")
        assert fast is not None
        np.testing.assert_allclose(fast.gradients, full.gradients, atol=1e-5, rtol=1e-4)
        np.testing.assert_allclose(fast.scores, full.scores, atol=1e-4, rtol=1e-4)
        np.testing.assert_array_equal(fast.class_index, full.class_index)


def test_class_switch_falls_back_where_the_model_has_no_graph(rng):
    model = models.SubclassedCNN()
    x = rng.uniform(0, 1, (1, 32, 32, 3)).astype("float32")
    model(x)
    engine = engine_for(model)
    info = engine.layout(x.shape[1:]).resolve("sub_conv_b")
    first = engine.capture(x, [info], np.array([0], np.int32), 0, "auto").at(info.path)
    assert engine.recapture(first.activations, info, np.array([1], np.int32), 0, "auto") is None
