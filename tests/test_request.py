"""camwidget.explain.request: one Request, checked once, with one message per bad field."""

from __future__ import annotations

import dataclasses

import models
import numpy as np
import pytest

import camwidget as cw
from camwidget.explain import Explainer, Options, Request
from camwidget.targets import Class, ClassScore, Unit


def test_a_request_is_frozen_and_names_the_method_canonically():
    request = Request.of(layer="conv_b", method="GradCAM++", score="probability")
    assert request.options == Options(method="gradcam++", score="probability")
    with pytest.raises(dataclasses.FrozenInstanceError):
        request.layer = "conv_a"  # type: ignore[misc]
    other = request.with_options(method="hirescam")
    assert other.options.method == "hirescam" and other.layer == "conv_b" and request.options.method == "gradcam++"


@pytest.mark.parametrize(
    "fields, error, message",
    [
        ({"score": "logit"}, ValueError, "score must be one of 'auto', 'probability'"),
        ({"max_channels": 0}, ValueError, "max_channels must be a positive int or None, not 0"),
        ({"eigen_smooth": "yes"}, TypeError, "eigen_smooth must be True or False"),
        ({"method": "gradcan"}, ValueError, "method 'gradcan' is not known"),
        ({"grid": (4, 0)}, TypeError, "grid must be two positive ints"),
        ({"leading_tokens": -1}, ValueError, "leading_tokens must be an int of at least 0"),
        ({"options": "gradcam"}, TypeError, r"options must be camwidget.explain.Options\(...\)"),
        ({"target": ClassScore(1), "method": "scorecam"}, ValueError, "cannot take target= yet"),
        ({"target": Unit(0), "class_index": 1}, ValueError, "give class_index or target, not both"),
        ({"class_index": "dog"}, TypeError, "class_index must be an int, a sequence of ints or None, not str"),
        ({"class_index": [1, 2.5]}, TypeError, "class_index must be an int .* not float"),
    ],
)
def test_each_bad_field_gets_its_own_message(fields, error, message):
    with pytest.raises(error, match=message):
        Request.of(**fields)


def test_an_explainer_from_a_request_equals_one_from_keywords(rng):
    model = models.small_cnn(name="req")
    x = rng.random((2, 32, 32, 3)).astype(np.float32)
    request = Request.of(layer="conv_a", method="xgradcam")
    from_request = Explainer(model, request=request).explain(x, class_index=1)
    from_keywords = Explainer(model, layer="conv_a", method="xgradcam").explain(x, class_index=1)
    np.testing.assert_array_equal(from_request, from_keywords)
    np.testing.assert_allclose(from_request, cw.compute_cam(model, x, layer="conv_a", class_index=1, method="xgradcam"))


def test_one_class_range_check_one_message_on_every_surface(rng):
    """compute_cam, the explorer's attribute and its session all say the same words for a class out of range."""
    model = models.small_cnn(name="classes")
    picture = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
    said = "class_index 7 is out of range: the model's output has 3 classes (0..2)"
    with pytest.raises(ValueError, match=said.replace("(", r"\(").replace(")", r"\)")):
        cw.compute_cam(model, picture[None] / 255.0, class_index=7)
    ex = cw.CAMExplorer(model, picture, background=False)
    try:
        with pytest.raises(ValueError, match=r"class_index 7 is out of range: the model's output has 3 classes"):
            ex.class_index = 7
        with pytest.raises(ValueError, match=r"class_index 7 is out of range: the model's output has 3 classes"):
            ex.session.view(0, None, 7, "gradcam")
    finally:
        ex.close()


def test_a_class_is_a_target_in_the_request():
    """class_index=c is the friendly spelling of target=Class(c); nothing said is Class(), the top class; a
    masking method (class only) takes a Class target, as it takes class_index."""
    assert Request.of().target == Class() and Request.of().explains_class
    assert Request.of(class_index=3).target == Class(3)
    assert Request.of(class_index=np.array([1, 2])).target == Class((1, 2))
    assert Request.of(target=Class(3), method="scorecam").target == Class(3)
    assert not Request.of(target=Unit(0)).explains_class


def test_class_vectors_check_range_and_count_in_one_place():
    assert Class().vector(3, 5).tolist() == [-1, -1, -1]
    assert Class(2).vector(2, 5).tolist() == [2, 2]
    assert Class((4, 0)).vector(2, 5).tolist() == [4, 0]
    assert Class((4, 0)).vector(2, 5).dtype == np.int32
    with pytest.raises(ValueError, match=r"class_index 5 is out of range: the model's output has 5 classes"):
        Class((4, 5)).vector(2, 5)
    with pytest.raises(ValueError, match=r"class_index -1 is negative"):
        Class(-1).vector(1, 5)
    with pytest.raises(ValueError, match="class_index has 2 entries for 3 images"):
        Class((1, 2)).vector(3, 5)


def test_a_class_target_gives_the_class_index_maps(rng):
    """target=Class(c) and class_index=c are one request: the same maps, which equal an independent Grad-CAM of
    the class's logit (hand-split GradientTape), and differ from another class's."""
    import keras
    import tensorflow as tf

    model = models.small_cnn(name="class_target")
    x = rng.random((2, 32, 32, 3)).astype(np.float32)
    by_target = cw.compute_cam(model, x, layer="conv_b", target=Class((1, 2)))
    by_index = cw.compute_cam(model, x, layer="conv_b", class_index=[1, 2])
    np.testing.assert_array_equal(by_target, by_index)
    dense = model.get_layer("dense")
    probe = keras.Model(model.inputs, [model.get_layer("conv_b").output, model.get_layer("gap").output])
    with tf.GradientTape() as tape:
        acts, pooled = probe(tf.constant(x))
        logits = tf.matmul(pooled, dense.kernel) + dense.bias  # the logits: the softmax's input
        y = tf.stack([logits[0, 1], logits[1, 2]])
    grads = tape.gradient(y, acts).numpy()
    raw = np.maximum((acts.numpy() * grads.mean(axis=(1, 2), keepdims=True)).sum(-1), 0)
    expected = raw / raw.max(axis=(1, 2), keepdims=True)
    np.testing.assert_allclose(by_target, expected, atol=1e-4)
    assert not np.allclose(by_target, cw.compute_cam(model, x, layer="conv_b", target=Class(0)), atol=1e-3)
