"""Is the map on screen right (camwidget.explorer.check): the curves of the map shown beside a random map's, and
where the check does not apply. The Check view in the explorer and its randomisation: test_metrics."""

from __future__ import annotations

import io

import models
import numpy as np
import pytest
from PIL import Image

from camwidget import metrics
from camwidget.explain import Request
from camwidget.explorer.check import CHECK_STEPS, check_map, check_view
from camwidget.explorer.session import ExplorerSession
from camwidget.targets import ClassScore


@pytest.fixture(scope="module")
def session():
    model = models.small_cnn(n_classes=2, size=16, name="check")
    s = ExplorerSession(model, [np.random.default_rng(0).integers(0, 256, (16, 16, 3), dtype=np.uint8)], warm_up=False)
    yield s
    s.close()


def test_the_check_of_a_view_is_its_maps_curves_beside_a_random_maps(session):
    view = session.view(0, "conv_b", None, "gradcam")
    checked = check_view(session, 0, view, randomize=False)
    x, model = session.model_input(0), session.explainer.model
    want = metrics.deletion(model, x, view.cam[None], class_index=view.class_index, steps=CHECK_STEPS)
    np.testing.assert_allclose(checked.deletion.scores, want.scores, atol=1e-6)
    assert checked.insertion.scores.shape == checked.random_deletion.scores.shape == (1, CHECK_STEPS + 1)
    assert checked.randomization is None  # run on demand only
    assert checked.title.startswith(f"image 0: Grad-CAM of {session.class_names[view.class_index]} at conv_b")
    with Image.open(io.BytesIO(checked.figure_png(width_px=400))) as figure:
        assert figure.format == "PNG" and figure.size[0] == 400


def test_a_map_that_is_not_a_pictures_is_refused_before_any_work(session):
    with pytest.raises(ValueError, match="the map check works on pictures .a 2-D map of an image model."):
        check_map(
            session.explainer.model,
            session.model_input(0),
            np.zeros(4, np.float32),
            0,
            layer="conv_b",
            method="gradcam",
            output=0,
            title="",
            pixels=session.display_pixels(0),
        )


def test_an_explorer_of_a_target_is_told_the_check_scores_a_class():
    model = models.small_cnn(n_classes=2, size=16, name="check_target")
    picture = np.zeros((16, 16, 3), np.uint8)
    s = ExplorerSession(model, [picture], request=Request.of(target=ClassScore(1)), warm_up=False)
    try:
        with pytest.raises(ValueError, match="the map check scores a class's probability; this explorer explains"):
            check_view(s, 0, s.view(0, "conv_b", None, "gradcam"), randomize=False)
    finally:
        s.close()
