"""camwidget.explain.explainer: the Explainer holds a model only while it is open, aug_smooth averages the maps of
flipped and scaled copies, and the docstring's examples run as written."""

from __future__ import annotations

import gc
import weakref

import keras
import models
import numpy as np
from reference import CLASSES, activations_and_gradients, assert_close, relu_max

import camwidget as cw
from camwidget.explain import Explainer


def test_explainer_holds_then_releases(batch):
    model = models.small_cnn(name="held")
    ref = weakref.ref(model)
    explainer = Explainer(model, layer="conv_b")
    del model
    gc.collect()
    assert explainer.explain(batch).shape == (4, 16, 16)
    explainer.close()
    gc.collect()
    assert ref() is None


def test_aug_smooth_averages_flipped_and_scaled_copies(model, x):
    total = 0
    for flip in (False, True):
        for factor in (0.9, 1.0, 1.1):
            xa = (x[:, :, ::-1] if flip else x) * factor
            A, G = activations_and_gradients(model, "conv_b", np.ascontiguousarray(xa, np.float32), CLASSES)
            m = relu_max((A * G.mean(axis=(1, 2), keepdims=True)).sum(-1))
            total = total + (m[:, :, ::-1] if flip else m)
    cam = cw.compute_cam(model, x, layer="conv_b", class_index=CLASSES, aug_smooth=True)
    assert_close(cam, relu_max(total / 6))


def test_the_explainer_docstring_examples_run_as_written():
    """The examples at the top of camwidget.explain (the package) and in Explainer's docstring, run by doctest on a small
    random-weights model with VGG16's layer names and ImageNet's 1000 classes (class 281 is one of them)."""
    import doctest

    from camwidget import explain

    keras.utils.set_random_seed(5)
    base = keras.applications.VGG16(include_top=False, weights=None, input_shape=(32, 32, 3))
    head = keras.layers.Dense(1000, activation="softmax")(keras.layers.GlobalAveragePooling2D()(base.output))
    model = keras.Model(base.input, head)
    images = np.random.default_rng(5).normal(size=(2, 32, 32, 3)).astype(np.float32)
    globs = {"Explainer": Explainer, "model": model, "images": images, "cw": cw, "np": np}
    finder = doctest.DocTestFinder()
    wanted = ("camwidget.explain", "camwidget.explain.explainer.Explainer")
    found = finder.find(explain, globs=globs) + finder.find(explain.explainer, globs=globs)
    tests = [t for t in found if t.name in wanted]
    assert sorted(t.name for t in tests) == sorted(wanted)
    assert all(t.examples for t in tests)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    for test in tests:
        runner.run(test)
    assert runner.summarize(verbose=False).failed == 0
