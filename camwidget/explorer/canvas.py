"""The overlay blended in the browser (an anywidget): opacity and colormap repaint with no kernel round trip.

The kernel sends the picture (when the image changes), the map as one byte per pixel (when the map changes)
and every colormap's table; :func:`link_controls` links the opacity slider and colormap dropdown to it in the
browser. The kernel also sets `alpha` and `colormap_index` itself, so the widget state that a saved notebook
keeps is always the view on screen. Where the front end cannot load (an exported HTML page offline), the
kernel-drawn overlay <img> beside it is shown instead.
"""

from __future__ import annotations

from importlib import resources

import anywidget
import ipywidgets as widgets
import numpy as np
import traitlets

from camwidget import render

_ESM = resources.files("camwidget").joinpath("static/overlay.js").read_text(encoding="utf-8")
_CSS = """
.camwidget-live .camwidget-overlay { display: none !important; }
.camwidget-canvas-view { line-height: 0; }
.camwidget-canvas-view canvas { width: 100%; height: 100%; object-fit: contain; }
"""
# In the page itself (an HTML widget), so that it applies where this module cannot load (an exported page
# offline): until the canvas has drawn, it stays out of sight, and the kernel's <img> shows the view.
STALE = "camwidget-stale"  # on the panels while they show the previous view and a newer one is computed
PAGE_STYLE = (
    "<style>.camwidget-explorer:not(.camwidget-live) .camwidget-canvas { display: none !important; }"
    f" .{STALE} {{ opacity: 0.5; transition: opacity 0.2s; }}</style>"
)


class OverlayCanvas(anywidget.AnyWidget):
    _esm = traitlets.Unicode(_ESM).tag(sync=True)
    _css = traitlets.Unicode(_CSS).tag(sync=True)
    picture = traitlets.Bytes(b"").tag(sync=True)  # the display picture, PNG or JPEG
    picture_format = traitlets.Unicode("png").tag(sync=True)
    size = traitlets.List(traitlets.Int(), [0, 0]).tag(sync=True)  # (height, width) of picture and map
    cam = traitlets.Bytes(b"").tag(sync=True)  # (height, width) colormap indices, one byte each
    alpha = traitlets.Float(0.5).tag(sync=True)
    colormap_index = traitlets.Int(0).tag(sync=True)  # a row of `tables`: the colormap dropdown's index
    colormaps = traitlets.List(traitlets.Unicode()).tag(sync=True)  # the dropdown's options, in its order
    tables = traitlets.Bytes(b"").tag(sync=True)  # len(colormaps) x 256 x RGB

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)
        self.add_class("camwidget-canvas-view")

    def show_picture(self, rgb: np.ndarray) -> None:
        fmt, data = render.display_bytes(rgb)
        with self.hold_sync():
            self.size = [int(rgb.shape[0]), int(rgb.shape[1])]
            self.picture_format, self.picture = fmt, data

    def show_map(self, upsampled: np.ndarray) -> None:
        """`upsampled`: the map at the picture's display size, in [0, 1] (as render.colorize takes it)."""
        self.cam = render.colormap_indices(upsampled).tobytes()

    def set_colormaps(self, names: list[str]) -> None:
        if names != list(self.colormaps):
            with self.hold_sync():
                self.tables = b"".join(render.colormap_table(n).tobytes() for n in names)
                self.colormaps = list(names)


def link_controls(
    canvas: OverlayCanvas, alpha: widgets.FloatSlider, colormap: widgets.Dropdown
) -> list[widgets.Widget]:
    """Browser-side links: a slider move or colormap choice repaints the canvas at once."""
    return [
        widgets.jslink((alpha, "value"), (canvas, "alpha")),
        widgets.jslink((colormap, "index"), (canvas, "colormap_index")),  # a Dropdown syncs its index
    ]
