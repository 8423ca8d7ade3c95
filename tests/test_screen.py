"""What the explorer shows (camwidget.explorer.screen): a computed view installed and painted into the controls,
and the status and progress lines, read as values."""

from __future__ import annotations

import io

import numpy as np
from explorer_parts import parts_fixture
from PIL import Image

from camwidget import render
from camwidget.explorer.canvas import STALE
from camwidget.explorer.controller import BLEND, MAP
from camwidget.explorer.view_request import ViewRequest, compute_view

parts = parts_fixture(2, (32, 48, 3), draw=False)


def request(image: int = 0, layer: str = "conv_b", class_index: int | None = None) -> ViewRequest:
    return ViewRequest(image, layer, class_index, "gradcam", "auto", False, False)


def png(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


def test_a_view_installed_and_painted_is_the_overlay_shown(parts):
    screen, session, c = parts.screen, parts.session, parts.controls
    asked = request(1, "conv_a", 2)
    result = compute_view(session, asked)
    assert screen.install(asked, result) is True  # another picture than before
    screen.paint(MAP, 0.3, "viridis")
    assert screen.view is result.view and screen.image == 1 and screen.request == asked
    pixels = session.display_pixels(1, 0)
    heat = render.colorize(render.upsample(result.view.cam, *pixels.shape[:2]), "viridis")
    np.testing.assert_array_equal(png(c.overlay.value), render.blend(pixels, heat, 0.3))
    np.testing.assert_array_equal(
        screen.overlay(0.3, "viridis"), render.overlay(session.pixels[1], result.view.cam, 0.3, "viridis")
    )
    assert c.canvas.alpha == 0.3 and c.colorbar.value  # the browser's blend and the colorbar follow
    assert screen.install(request(1, "conv_b", 2), compute_view(session, request(1, "conv_b", 2))) is False


def test_a_blend_repaints_without_recolouring(parts, monkeypatch):
    screen = parts.screen
    screen.install(request(), compute_view(parts.session, request()))
    screen.paint(MAP, 0.5, "jet")
    coloured = []
    monkeypatch.setattr(render, "colorize", lambda *args: coloured.append(args) or np.zeros((1, 1, 3), np.uint8))
    screen.paint(BLEND, 0.8, "jet")
    assert coloured == []


def test_the_status_line_is_a_value_with_the_error_escaped_in_its_html(parts):
    screen = parts.screen
    screen.install(request(), compute_view(parts.session, request()))
    screen.say()
    assert screen.status.error is None and screen.status.shown is not None and not screen.error_shown
    screen.say(error="layer <b> not found")
    assert screen.status.error == "layer <b> not found" and screen.error_shown
    assert "layer &lt;b&gt; not found" in parts.controls.status.value and "<b> not" not in parts.controls.status.value


def test_busy_and_progress_lines_say_what_is_computed_and_dim_the_old_view(parts):
    screen, c = parts.screen, parts.controls
    screen.install(request(), compute_view(parts.session, request()))
    asked = request(0, "conv_a")
    screen.busy(asked)
    assert screen.status.computing == "Grad-CAM at conv_a" and c.busy.layout.display == "none"
    screen.busy(asked, visible=True)
    assert c.busy.layout.display == "flex" and STALE in c.overlay._dom_classes
    screen.progress(asked, 2, 5, "channels", visible=True)
    assert (c.progress.value, c.progress.max) == (2, 5) and "channels 2 of 5" in c.busy_text.value
    assert "until it is ready" in c.busy_text.value  # the view on screen is named meanwhile
    screen.busy(None)
    assert screen.status.computing is None and c.busy.layout.display == "none" and STALE not in c.overlay._dom_classes
