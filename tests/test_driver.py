"""The controller's side of the explorer (camwidget.explorer.driver.Driver): the controls read as a request, a
failed view undone, the controls kept in step with the model."""

from __future__ import annotations

from explorer_parts import parts_fixture

from camwidget.errors import CAMError
from camwidget.explorer.controller import MAP

parts = parts_fixture(2)


def test_the_request_is_what_the_controls_ask_for(parts):
    driver, c = parts.driver, parts.controls
    asked = driver.request()
    assert (asked.image, asked.layer, asked.class_index, asked.method) == (0, "conv_b", None, "gradcam")
    c.class_.value = 2  # the user's choice: the class no longer follows the top one
    assert driver.follow_top is False and driver.request().class_index == 2
    assert parts.screen.view.class_index == 2  # drawn at once (no event loop)
    with c.quietly():
        c.layer.value = "conv_a"  # from code, quietly: not drawn, but asked for by the next request
    assert driver.request().layer == "conv_a" and parts.screen.view.layer.path == "conv_b"


def test_a_failed_view_puts_every_control_back_and_says_why(parts):
    driver, c, screen = parts.driver, parts.controls, parts.screen
    good = dict(driver.good)
    with c.quietly():
        c.layer.value, c.method.value, c.image.value = "conv_a", "scorecam", 1
    driver.failed(CAMError("this cannot be shown"), MAP)
    assert (c.layer.value, c.method.value, c.image.value) == (good["layer"], good["method"], good["image"])
    assert screen.status.error == "this cannot be shown" and screen.error_shown
    driver.failed(KeyError("x"), MAP)  # an error camwidget did not expect is named by its kind
    assert screen.status.error == "KeyError: 'x'"


def test_a_change_that_works_clears_the_error_line(parts):
    driver, c, screen = parts.driver, parts.controls, parts.screen
    driver.failed(CAMError("no"), MAP)
    c.alpha.value = 0.8  # a blend that works
    assert screen.status.error is None and not screen.error_shown


def test_a_changed_model_is_followed_its_layer_gone_said_once(parts):
    driver, c = parts.driver, parts.controls
    assert driver.catch_up() is False  # nothing changed
    with c.quietly():
        c.layer.value = "conv_a"
    c.layer.options = [*c.layer.options, ("gone · 1×1×1", "gone")]
    with c.quietly():
        c.layer.value = "gone"  # a layer the model does not have (as after a layer was removed)
    driver.follow_model()
    assert c.layer.value == parts.session.layout(0).default_path() == "conv_b"
    assert driver.notice == "layer gone is no longer in the model, so conv_b is shown"
    driver.say()
    assert driver.notice is None and "no longer in the model" in " ".join(parts.screen.status.warnings)
