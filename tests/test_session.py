"""camwidget.explorer.session: the explorer's model side without widgets: views, caches, model changes."""

import models
import numpy as np
import pytest

import camwidget as cw
from camwidget.errors import CAMError
from camwidget.explorer.session import ExplorerSession


@pytest.fixture
def session(rng):
    model = models.small_cnn(name="sess")
    pictures = [rng.integers(0, 256, (32, 32, 3), dtype=np.uint8) for _ in range(2)]
    s = ExplorerSession(model, pictures, preprocess="none", warm_up=False)
    yield s
    s.close()


def test_a_view_equals_compute_cam_and_is_then_cached(session):
    view = session.view(0, "conv_a", 2, "gradcam")
    expected = cw.compute_cam(session.explainer.model, session.model_input(0), layer="conv_a", class_index=2)[0]
    np.testing.assert_allclose(view.cam, expected, atol=1e-6)
    calls = session.model_calls
    again = session.view(0, "conv_a", 2, "gradcam")
    assert again.how == "cached" and session.model_calls == calls


def test_one_pass_serves_every_layer_after_the_default(session):
    session.view(0, None, 1, "gradcam")  # the default layer, conv_b, and those after it
    calls = session.model_calls
    session.view(0, "conv_a", 1, "gradcam")  # below the default: one pass that reaches every layer
    session.view(0, "pool_a", 1, "gradcam")
    session.view(0, "conv_b", 1, "hirescam")
    assert session.model_calls == calls + 1


def test_a_class_change_runs_only_the_layers_after(session):
    session.view(1, "conv_b", 0, "gradcam")
    view = session.view(1, "conv_b", 2, "gradcam")
    assert view.how == "after-layer pass"
    expected = cw.compute_cam(session.explainer.model, session.model_input(1), layer="conv_b", class_index=2)[0]
    np.testing.assert_allclose(view.cam, expected, atol=1e-6)


def test_a_changed_model_drops_every_cached_value(session):
    session.view(0, "conv_b", 1, "gradcam")
    model = session.explainer.model
    model.set_weights([w * 0.5 for w in model.get_weights()])
    assert session.sync() is True and session.cached_views == 0
    assert session.sync() is False


def test_bad_arguments(rng):
    model = models.small_cnn(name="bad")
    picture = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
    with pytest.raises(CAMError, match="max_pixels must be positive"):
        ExplorerSession(model, picture, max_pixels=0)
    s = ExplorerSession(model, picture, warm_up=False)
    with pytest.raises(CAMError, match="class_index 7 is out of range"):
        s.view(0, None, 7, "gradcam")
    s.close()


def test_a_fresh_map_is_never_called_cached_and_says_what_it_came_from(rng):
    """The status line's source of truth: a map computed now says which pass it was computed from (the full
    pass, the background warm-up's gradients, an earlier pass's), and only a map kept whole reads "cached"."""
    model = models.small_cnn(name="truth")
    pictures = [rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)]
    s = ExplorerSession(model, pictures, preprocess="none", warm_up=True)
    try:
        assert s.view(0, None, 1, "gradcam").how == "full pass"
        s.warm_up(0, 1, "auto")
        s.wait_for_warm_ups()
        assert s.warm_up_passes == 1
        calls = s.model_calls
        deeper = s.view(0, "conv_a", 1, "gradcam")  # below the first pass's layers: only the warm-up reached it
        assert deeper.how == "from the warm-up pass's gradients" and s.model_calls == calls
        scored = s.view(0, "conv_a", 1, "scorecam")  # Score-CAM's own masked passes run now, on kept activations
        assert scored.how == "from the warm-up pass's gradients" and scored.seconds > 0
        assert s.view(0, "conv_a", 1, "scorecam").how == "cached"
    finally:
        s.close()


def test_without_a_warm_up_a_kept_pass_is_called_earlier(session):
    session.view(0, "conv_a", 1, "gradcam")  # below the default layer: one pass reaching every layer
    later = session.view(0, "conv_b", 1, "hirescam")
    assert later.how == "from an earlier pass's gradients"


def test_the_pictures_parts_read_through_the_session_are_the_pictures_own(session):
    from camwidget.explorer.pictures import OfPictures

    assert isinstance(ExplorerSession.pixels, OfPictures)  # on the class: the attribute itself (help, the docs)
    assert session.pixels is session.pictures.pixels and session.names == ["image 0", "image 1"]
    assert session.frames(1) == 1 and session.describe(0) == session.pictures.describe(0)


def test_the_session_explains_the_request_it_is_given(rng):
    from camwidget.explain import Request
    from camwidget.targets import ClassScore

    model = models.small_cnn(name="sess_request")
    s = ExplorerSession(
        model, [rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)], request=Request.of(target=ClassScore(1))
    )
    try:
        assert s.explainer.target.class_index == 1 and s.class_names == ["target ClassScore(class_index=1)"]
    finally:
        s.close()
