"""The explorer's still picture (explorer/static_view.py): the ``image/png`` in its mimebundle that nbconvert,
GitHub's viewer and the docs show where the widget cannot load."""

from __future__ import annotations

import base64
import io
import json
import os
from pathlib import Path

import ipywidgets as widgets
import nbformat
import numpy as np
import pytest
from PIL import Image

import camwidget as cw
from camwidget.explorer import static_view

ROOT = Path(__file__).resolve().parents[1]
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


def png_of(rgb: np.ndarray) -> bytes:
    out = io.BytesIO()
    Image.fromarray(rgb).save(out, format="PNG")
    return out.getvalue()


def solid(height: int, width: int, colour: tuple[int, int, int]) -> np.ndarray:
    return np.broadcast_to(np.array(colour, np.uint8), (height, width, 3)).copy()


def decode(data: bytes | str) -> np.ndarray:
    raw = base64.b64decode(data) if isinstance(data, str) else data
    with Image.open(io.BytesIO(raw)) as picture:
        assert picture.format == "PNG"
        return np.asarray(picture.convert("RGB"))


def has_text_rows_under(still: np.ndarray, panels_height: int, status: str) -> bool:
    """Under the pictures: a gap, then whole rows of text, at least one per status line and one for the note
    (long lines wrap to the picture's width)."""
    rows, left = divmod(still.shape[0] - panels_height - static_view.GAP, static_view.LINE_HEIGHT)
    return (
        left == 0 and rows >= len(status.splitlines()) + 1 and (still[panels_height + static_view.GAP :] != 255).any()
    )


def test_a_row_of_panels_at_their_layout_size_with_hidden_ones_left_out():
    red = widgets.Image(value=png_of(solid(30, 40, (255, 0, 0))), layout=widgets.Layout(height="60px", width="80px"))
    blue = widgets.Image(value=png_of(solid(10, 10, (0, 0, 255))), layout=widgets.Layout(height="60px"))
    hidden = widgets.Image(value=png_of(solid(10, 10, (0, 255, 0))), layout=widgets.Layout(display="none"))
    empty = widgets.Image()  # nothing drawn yet: no room taken
    box = widgets.VBox([widgets.HTML("controls"), widgets.HBox([red, hidden, blue, empty])])
    still = decode(static_view.view_png(box, "image 0 | class cat"))
    panels_width = 80 + static_view.GAP + 60  # blue keeps its aspect at the 60 px its layout gives
    assert still.shape[1] == max(panels_width, 320) and has_text_rows_under(still, 60, "image 0 | class cat")
    assert (still[:60, :80] == (255, 0, 0)).all()
    assert (still[:60, 80 + static_view.GAP : panels_width] == (0, 0, 255)).all()
    assert not (still == (0, 255, 0)).all(axis=-1).any()  # the hidden panel is nowhere


def test_a_picture_in_a_box_of_another_shape_keeps_its_aspect_and_is_centred():
    wide = widgets.Image(value=png_of(solid(10, 40, (255, 0, 0))), layout=widgets.Layout(height="40px", width="40px"))
    still = decode(static_view.view_png(widgets.HBox([wide])))
    assert (still[15:25, :40] == (255, 0, 0)).all()  # 40x10 fitted into 40x40: rows 15..24
    assert (still[:15, :40] == 255).all() and (still[25:40, :40] == 255).all()


def test_nothing_shown_means_no_picture():
    assert static_view.view_png(widgets.VBox([widgets.HTML("x"), widgets.Image()])) is None


def test_a_wide_still_is_scaled_down_to_the_page():
    wide = widgets.Image(value=png_of(solid(100, 3000, (255, 0, 0))))
    still = decode(static_view.view_png(widgets.HBox([wide])))
    assert still.shape[1] == static_view.MAX_WIDTH
    assert (still[: round(100 * static_view.MAX_WIDTH / 3000) - 1] == (255, 0, 0)).all()


@pytest.fixture
def explorer(small, rng):
    picture = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    ex = cw.CAMExplorer(small, {"noise": picture}, class_names=["cat", "dog", "fox"])
    yield ex
    ex.close()


def test_explorer_bundle_has_the_widget_view_and_a_png_of_the_overlay_with_its_colorbar(explorer):
    bundle = explorer._repr_mimebundle_()
    assert bundle[WIDGET_VIEW]["model_id"] == explorer.model_id  # the live front end still gets the widget
    still = decode(bundle["image/png"])
    # a 64 px picture is shown enlarged to 384 px (the explorer's smallest width), its colorbar 64 px beside it
    overlay_width = 384
    assert still.shape[1] == overlay_width + 8 + 64
    assert has_text_rows_under(still, overlay_width, explorer.status_text)
    # the left panel is the overlay (the map blended on the picture), not the picture alone
    expected = np.asarray(Image.fromarray(explorer.overlay).resize((overlay_width,) * 2, Image.Resampling.LANCZOS))
    plain = np.asarray(Image.fromarray(explorer.pixels).resize((overlay_width,) * 2, Image.Resampling.LANCZOS))
    shown = still[:overlay_width, :overlay_width].astype(int)
    assert np.abs(shown - expected).mean() < 2 < np.abs(shown - plain).mean()


def visible_pictures(widget: widgets.Widget) -> list[widgets.Image]:
    if widget.layout.display == "none":
        return []
    if isinstance(widget, widgets.Image):
        return [widget] if widget.value else []
    return [p for child in getattr(widget, "children", ()) for p in visible_pictures(child)]


def test_the_still_follows_the_view_side_by_side(explorer):
    explorer.controls["mode"].value = "Side by side"
    explorer.refresh()
    still = decode(explorer._repr_mimebundle_()["image/png"])
    shown = visible_pictures(explorer)
    assert len(shown) == 3  # picture, overlay, heatmap
    (height,) = {int(p.layout.height.removesuffix("px")) for p in shown}  # at one height
    width = sum(int(p.layout.width.removesuffix("px")) for p in shown) + 2 * static_view.GAP
    assert still.shape[1] == max(width, 320) and has_text_rows_under(still, height, explorer.status_text)


@pytest.mark.slow
def test_a_notebook_executed_by_nbconvert_stores_the_still(tmp_path):
    """What nbconvert, GitHub's viewer and the docs read: the executed notebook's output holds the PNG."""
    from nbclient import NotebookClient

    source = (
        "import numpy as np, keras, camwidget as cw\n"
        "inputs = keras.Input((32, 32, 3))\n"
        "h = keras.layers.Conv2D(4, 3, activation='relu')(inputs)\n"
        "out = keras.layers.Dense(2, activation='softmax')(keras.layers.GlobalAveragePooling2D()(h))\n"
        "cw.CAMExplorer(keras.Model(inputs, out), np.zeros((32, 32, 3), 'uint8'), class_names=['a', 'b'])"
    )
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source)])
    with pytest.MonkeyPatch.context() as patch:  # the kernel inherits the environment, restored after
        patch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
        NotebookClient(
            nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
        ).execute()
    (result,) = [o for o in nb.cells[0].outputs if o.output_type == "execute_result"]
    assert WIDGET_VIEW in result.data
    still = decode(result.data["image/png"])
    assert still.shape[1] == 384 + 8 + 64  # the 32 px picture at the explorer's 384 px, and its colorbar
    json.dumps(nbformat.from_dict(nb))  # and it stores as JSON, as nbconvert writes it
    # nbconvert's HTML of it, with no widget state saved (as GitHub's viewer sees it): the still, not "Loading widget"
    from nbconvert import HTMLExporter

    nb.metadata.pop("widgets", None)
    html, _ = HTMLExporter().from_notebook_node(nb)
    assert f'src="data:image/png;base64,{result.data["image/png"]}"' in html
    assert WIDGET_VIEW not in html
