"""The overlay blended in the browser (camwidget.explorer.canvas): what the kernel sends it is enough to paint
exactly the kernel's view."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

import camwidget as cw
from camwidget import render


def browser_blend(canvas) -> np.ndarray:
    """What overlay.js paints, written again in numpy: (1 - a) * picture + a * table[map], rounded."""
    h, w = canvas.size
    picture = np.asarray(Image.open(io.BytesIO(canvas.picture)).convert("RGB"), np.float64)
    indices = np.frombuffer(canvas.cam, np.uint8).reshape(h, w)
    tables = np.frombuffer(canvas.tables, np.uint8).reshape(len(canvas.colormaps), 256, 3).astype(np.float64)
    a = canvas.alpha
    return np.floor((1 - a) * picture + a * tables[canvas.colormap_index][indices] + 0.5).astype(np.uint8)


def shown(ex) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(ex.controls["overlay"].value)).convert("RGB"))


@pytest.fixture
def explorer(small, rng):
    ex = cw.CAMExplorer(
        small, [rng.integers(0, 256, (48, 72, 3), dtype=np.uint8), rng.integers(0, 256, (30, 20, 3), dtype=np.uint8)]
    )
    yield ex
    ex.close()


def test_the_browser_paints_the_kernels_overlay(explorer):
    canvas = explorer.controls["canvas"]
    assert canvas.size == [48, 72] and canvas.colormaps[canvas.colormap_index] == "jet"
    np.testing.assert_allclose(browser_blend(canvas), shown(explorer), atol=1)
    explorer.alpha = 0.8
    explorer.colormap = "viridis"
    assert canvas.alpha == 0.8 and canvas.colormaps[canvas.colormap_index] == "viridis"
    np.testing.assert_allclose(browser_blend(canvas), shown(explorer), atol=1)
    explorer.colormap = "cividis"  # not in the list: added, its table sent before the dropdown moves
    assert canvas.colormaps[canvas.colormap_index] == "cividis"
    np.testing.assert_allclose(browser_blend(canvas), shown(explorer), atol=1)
    explorer.image_index = 1
    explorer.layer = "conv_a"
    assert canvas.size == [30, 20]
    np.testing.assert_allclose(browser_blend(canvas), shown(explorer), atol=1)


def test_opacity_and_colormap_are_linked_in_the_browser(explorer):
    links = [(link.source, link.target) for link in explorer._c.links]
    canvas = explorer.controls["canvas"]
    assert ((explorer.controls["alpha"], "value"), (canvas, "alpha")) in links
    assert ((explorer.controls["colormap"], "index"), (canvas, "colormap_index")) in links
    tables = np.frombuffer(canvas.tables, np.uint8).reshape(-1, 256, 3)
    for i, name in enumerate(canvas.colormaps):  # the dropdown's index picks the same colormap here
        assert explorer.controls["colormap"].options[i] == name
        np.testing.assert_array_equal(tables[i], render.colormap_table(name))
