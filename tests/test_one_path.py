"""Every surface that makes maps asks the Explainer (the `calls` fixture is in conftest.py): each engine entry point that makes maps is wrapped so it
records whether an Explainer method is on the call stack, each surface is driven, and every call must have come
through the Explainer. A surface that called the engine's capture or tail pass itself would record a False."""

from __future__ import annotations

import keras
import models
import numpy as np
import pytest

import camwidget as cw
from camwidget import metrics
from camwidget.engines import engine_for
from camwidget.explorer.session import ExplorerSession


@pytest.fixture(scope="module")
def model_and_images() -> tuple[keras.Model, np.ndarray]:
    keras.utils.set_random_seed(3)
    model = models.small_cnn()
    x = np.random.default_rng(0).random((2, 32, 32, 3)).astype("float32")
    return model, x


def test_compute_cam_goes_through_the_explainer(calls, model_and_images):
    model, x = model_and_images
    cw.compute_cam(model, x, layer="conv_b")
    models.all_through_explainer(calls)


def test_explain_many_goes_through_the_explainer(calls, model_and_images):
    model, x = model_and_images
    pictures = list((x * 255).astype("uint8"))
    items = list(cw.explain_many(model, pictures, layer="conv_b", preprocess=lambda p: p / 255))
    assert all(item.error is None for item in items)
    models.all_through_explainer(calls)


def test_model_randomization_goes_through_the_explainer(calls, model_and_images):
    model, x = model_and_images
    metrics.model_randomization(model, x, layer="conv_b", steps=1)
    models.all_through_explainer(calls)


def test_data_randomization_goes_through_the_explainer(calls, model_and_images):
    model, x = model_and_images
    labels = np.array([0, 1])
    metrics.data_randomization(model, x, labels, x, layer="conv_b", epochs=1)
    models.all_through_explainer(calls)


def test_the_explorer_session_goes_through_the_explainer(calls, model_and_images):
    """Every way the explorer's session gets ingredients: a first view (a full pass), a class switch (the tail
    pass), the background warm-up pass, a layer it reached, Score-CAM's masked passes, a top-class lookup."""
    model, x = model_and_images
    pictures = list((x * 255).astype("uint8"))
    session = ExplorerSession(model, pictures, preprocess=lambda p: p / 255, warm_up=True)
    try:
        session.view(0, "conv_b", 0, "gradcam")
        session.view(0, "conv_b", 1, "gradcam")
        session.warm_up(0, 1, "auto")
        session.wait_for_warm_ups()
        session.view(0, "conv_a", 1, "gradcam")
        session.view(1, None, None, "scorecam")
    finally:
        session.close()
    assert {"capture", "recapture"} <= {name for name, _ in calls}, calls
    models.all_through_explainer(calls)


def test_the_gallery_goes_through_the_explainer(calls, model_and_images):
    from camwidget.explorer.gallery import Gallery

    model, x = model_and_images
    pictures = list((x * 255).astype("uint8"))
    Gallery(model, pictures, layer="conv_b", preprocess=lambda p: p / 255)
    models.all_through_explainer(calls)


def test_the_audit_and_the_concepts_go_through_the_explainer(calls, model_and_images):
    """The audit's maps (explain_many) and the concepts' activations (the Explainer's capture) alike."""
    model, x = model_and_images
    pictures = [np.clip(x[i % 2] + 0.01 * i, 0, 1) for i in range(6)]
    cw.audit(model, pictures, labels=[0, 1] * 3, layer="conv_b", concepts=2, progress_bar=False)
    models.all_through_explainer(calls)
    calls.clear()
    cw.concepts(model, x, n=2, layer="conv_b")
    models.all_through_explainer(calls)


def test_the_check_catches_a_direct_engine_call(calls, model_and_images):
    """The check itself: a capture made straight on the engine is recorded as outside the Explainer."""
    model, x = model_and_images
    engine = engine_for(model)
    layout = engine.layout(x.shape[1:])
    info = layout.layers["conv_b"]
    engine.capture(x, [info], np.zeros(len(x), np.int32), 0, "auto", None, None)
    assert calls == [("capture", False)]
    with pytest.raises(AssertionError, match="outside the Explainer"):
        models.all_through_explainer(calls)
