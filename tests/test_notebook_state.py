"""In a real kernel: redraws land after a cell, and the last view is kept in saved widget state and in
HTML exported by nbconvert."""

from __future__ import annotations

import nbformat
import pytest
from nbclient import NotebookClient
from nbconvert import HTMLExporter

pytestmark = pytest.mark.slow  # a real kernel

SETUP = """
import os, io
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"
import numpy as np, keras
import camwidget as cw
from camwidget import render
from PIL import Image
keras.utils.set_random_seed(0)
inp = keras.Input((32, 32, 3))
x = keras.layers.Conv2D(8, 3, padding="same", activation="relu")(inp)
out = keras.layers.Dense(3, activation="softmax")(keras.layers.GlobalAveragePooling2D()(x))
model = keras.Model(inp, out)
img = np.random.default_rng(0).integers(0, 256, (40, 60, 3), dtype=np.uint8)
"""


@pytest.fixture(scope="module")
def executed():
    cells = [
        SETUP,
        "ex = cw.CAMExplorer(model, img)\nex",
        "ex.alpha = 0.9\nex.colormap = 'viridis'",
        (
            "shown = np.asarray(Image.open(io.BytesIO(ex.controls['overlay'].value)).convert('RGB'))\n"
            "expected = render.overlay(img, ex._view.cam, 0.9, 'viridis')\n"
            "print('SHOWN', np.array_equal(shown, expected))\n"
            "import base64; print('LAST', base64.b64encode(ex.controls['overlay'].value).decode()[:200])"
        ),
    ]
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    NotebookClient(nb, timeout=300, kernel_name="python3", store_widget_state=True).execute()
    return nb


def printed(nb, marker):
    text = "".join(o.get("text", "") for o in nb.cells[-1].outputs if o.output_type == "stream")
    return next(line.split(" ", 1)[1] for line in text.splitlines() if line.startswith(marker))


def test_change_in_a_cell_is_drawn_when_the_cell_ends(executed):
    assert printed(executed, "SHOWN").startswith("True")


def test_saved_widget_state_holds_the_last_overlay(executed):
    state = executed.metadata["widgets"]["application/vnd.jupyter.widget-state+json"]["state"]
    last = printed(executed, "LAST")
    images = [s for s in state.values() if s["model_name"] == "ImageModel"]
    assert images, "no Image widget in the saved state"
    stored = [b["data"] for s in images for b in s.get("buffers", []) if b["path"] == ["value"]]
    assert any(data.startswith(last) for data in stored)
    view = executed.cells[1].outputs[0]
    assert "application/vnd.jupyter.widget-view+json" in view["data"]


def test_nbconvert_html_shows_the_last_overlay(executed):
    html, _ = HTMLExporter().from_notebook_node(executed)
    assert printed(executed, "LAST") in html
    assert "application/vnd.jupyter.widget-state+json" in html
