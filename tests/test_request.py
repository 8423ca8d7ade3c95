"""camwidget.explain.request: one Request, checked once, with one message per bad field."""

from __future__ import annotations

import dataclasses

import models
import numpy as np
import pytest

import camwidget as cw
from camwidget.explain import Explainer, Options, Request
from camwidget.targets import ClassScore


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
