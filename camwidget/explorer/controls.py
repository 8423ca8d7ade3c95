"""The explorer's widgets: built, named, laid out and sized in one place; no state of the view, no maths.

Sizes on screen are in px, chosen so that every view fits a 900 px notebook cell and its panels line up.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterator, Sequence

import ipywidgets as widgets
import numpy as np
from PIL import Image as PILImage

from camwidget import render
from camwidget.engines import ModelLayout
from camwidget.explorer.canvas import PAGE_STYLE, OverlayCanvas, link_controls
from camwidget.explorer.check import RANDOMIZED_LAYERS
from camwidget.explorer.view_request import MODES
from camwidget.methods import METHODS

MIN_DISPLAY_WIDTH = 384  # small images are enlarged to this width
PANEL_WIDTH = 600  # the overlay alone, at most (its colorbar beside it)
PANEL_HEIGHT = 560
ROW_WIDTH = 640  # side by side: picture, overlay and heatmap together
COLORBAR_WIDTH = 64
GRID_WIDTH = 800  # a Compare or Check view's figure


class Controls:
    """Every widget of one explorer, by role; :meth:`named` gives them by their public names.

    Args:
        kind: what the explorer shows ("image", "signal", "volume"): which controls are offered.
        layout: the model's layout for the first picture (its spatial layers fill the Layer menu).
        layer: the layer shown first.
        modes: the View menu's entries.
        method, alpha, colormap, score, eigen_smooth, aug_smooth: the controls' first values.
        frames: the first clip's frames (the Frame slider's range).
    """

    def __init__(
        self,
        kind: str,
        layout: ModelLayout,
        layer: str,
        modes: Sequence[str],
        *,
        method: str,
        alpha: float,
        colormap: str,
        score: str,
        eigen_smooth: bool,
        aug_smooth: bool,
        frames: int = 1,
    ) -> None:
        self.syncing = False  # set from code: the observers do not take it as the user's change
        wide = {"description_width": "70px"}
        self.image = widgets.Dropdown(description="Image", style=wide, layout=px(400))
        self.upload = widgets.FileUpload(
            accept="image/*",
            multiple=False,
            description="Upload image",
            layout=widgets.Layout(display=None if kind == "image" else "none"),  # pictures only
        )
        self.frame = widgets.IntSlider(
            description="Frame",
            min=0,
            max=max(0, frames - 1),
            value=0,
            style=wide,
            continuous_update=True,
            layout=px(400, display=None if kind == "volume" else "none"),
        )
        self.layer = widgets.Dropdown(
            description="Layer", options=layer_options(layout), value=layer, style=wide, layout=px(400)
        )
        self.method = widgets.Dropdown(
            description="Method",
            options=[(f"{m.family}: {m.label}" if m.family else m.label, m.name) for m in METHODS.values()],
            value=method,
            style=wide,
            layout=px(320),
        )
        self.method.tooltip = method_tooltip(method)
        self.method.observe(lambda change: setattr(self.method, "tooltip", method_tooltip(change["new"])), "value")
        self.scrub = widgets.SelectionSlider(
            description="Depth",
            options=layout.spatial_paths(),
            value=layer,
            style=wide,
            readout=False,
            continuous_update=True,
            layout=px(400),
        )
        self.class_ = widgets.Dropdown(description="Class", style=wide, layout=px(340))
        self.class_search = widgets.Combobox(
            placeholder="find a class: name or number, Enter",
            ensure_option=False,
            layout=px(240),
        )
        self.search_hint = widgets.HTML(layout=widgets.Layout(width="auto"))
        self.alpha = widgets.FloatSlider(
            description="Opacity",
            min=0.0,
            max=1.0,
            step=0.05,
            value=alpha,
            continuous_update=True,
            style=wide,
            layout=px(280),
        )
        self.colormap = widgets.Dropdown(
            description="Colormap", options=colormap_options(colormap), value=colormap, style=wide, layout=px(220)
        )
        self.mode = widgets.Dropdown(
            description="View",
            options=list(modes),
            value="Overlay",
            style={"description_width": "40px"},
            layout=px(230),
        )
        self.versus = widgets.Dropdown(
            description="rather than", style={"description_width": "80px"}, layout=px(300, display="none")
        )
        self.score = widgets.Dropdown(
            description="Score",
            options=[
                ("logits (before softmax)", "auto"),
                ("probability", "probability"),
                ("ReST (logit + log probability)", "rest"),
            ],
            value=score,
            style=wide,
            layout=px(300),
        )
        self.eigen = widgets.Checkbox(
            value=bool(eigen_smooth), description="eigen-smooth", indent=False, layout=widgets.Layout(width="auto")
        )
        self.aug = widgets.Checkbox(
            value=bool(aug_smooth),
            description="aug-smooth (6 passes)",
            indent=False,
            layout=widgets.Layout(width="auto"),
        )
        self.randomize = widgets.Button(
            description="Randomisation check",
            tooltip=f"re-initialise the top {RANDOMIZED_LAYERS} layers of a copy, one at a time, and show the map after each",
            layout=px(200, display="none"),
        )
        self.overlay = widgets.Image(format="png", layout=widgets.Layout(object_fit="contain"))
        self.colorbar = widgets.Image(format="png", layout=widgets.Layout(object_fit="contain"))
        self.canvas = OverlayCanvas(alpha=float(alpha))  # the overlay, blended in the browser
        self.canvas.set_colormaps(colormap_options(colormap))
        self.canvas.colormap_index = self.colormap.index
        self.links = link_controls(self.canvas, self.alpha, self.colormap)
        self.page_style = widgets.HTML(PAGE_STYLE, layout=widgets.Layout(display="none"))
        self.plain = widgets.Image(format="png", layout=widgets.Layout(display="none", object_fit="contain"))
        self.heat = widgets.Image(format="png", layout=widgets.Layout(display="none", object_fit="contain"))
        self.grid = widgets.Image(
            format="png", layout=widgets.Layout(display="none", width="calc(100% - 8px)", max_width=f"{GRID_WIDTH}px")
        )
        self.status = widgets.HTML(layout=widgets.Layout(width="calc(100% - 8px)"))  # less its margins
        self.progress = widgets.IntProgress(min=0, max=1, value=0, bar_style="info", layout=px(160))
        self.busy_text = widgets.HTML()
        self.busy = widgets.HBox([self.progress, self.busy_text], layout=widgets.Layout(display="none"))

    def named(self) -> dict[str, widgets.Widget]:
        """The widgets by their public names (``explorer.controls``; each also has the CSS class
        ``camwidget-<name>``, a stable hook for styling and browser tests)."""
        return {
            "image": self.image,
            "upload": self.upload,
            "layer": self.layer,
            "method": self.method,
            "class": self.class_,
            "class-search": self.class_search,
            "alpha": self.alpha,
            "colormap": self.colormap,
            "mode": self.mode,
            "overlay": self.overlay,
            "plain": self.plain,
            "heatmap": self.heat,
            "colorbar": self.colorbar,
            "grid": self.grid,
            "canvas": self.canvas,
            "depth": self.scrub,
            "versus": self.versus,
            "frame": self.frame,
            "randomize": self.randomize,
            "status": self.status,
            "search-hint": self.search_hint,
            "progress": self.progress,
            "busy": self.busy_text,
            "score": self.score,
            "eigen-smooth": self.eigen,
            "aug-smooth": self.aug,
        }

    def rows(self) -> list[widgets.Widget]:
        """The explorer's children, top to bottom."""
        return [
            row(self.image, self.upload),
            row(self.layer, self.method),
            row(self.scrub),
            row(self.frame),
            row(self.score, self.eigen, self.aug),
            row(self.class_, self.class_search, self.search_hint),
            row(self.alpha, self.colormap, self.mode, self.versus, self.randomize),
            row(self.plain, self.overlay, self.canvas, self.heat, self.colorbar, align_items="center"),
            self.grid,
            self.busy,
            self.status,
            self.page_style,
        ]

    @contextlib.contextmanager
    def quietly(self) -> Iterator[None]:
        """Set controls from code without their observers taking it as the user's change."""
        previous, self.syncing = self.syncing, True
        try:
            yield
        finally:
            self.syncing = previous

    def show_panels_for(self, mode: str) -> None:
        """The panels and controls a View entry shows; the others hidden."""
        kind = MODES[mode]
        side = mode == "Side by side"
        self.plain.layout.display = self.heat.layout.display = "inline-block" if side else "none"
        self.overlay.layout.display = self.canvas.layout.display = "none" if kind else "inline-block"
        self.colorbar.layout.display = "inline-block" if mode == "Overlay" else "none"
        self.grid.layout.display = "block" if kind else "none"
        self.versus.layout.display = "flex" if kind == "classes" else "none"
        self.randomize.layout.display = None if kind == "check" else "none"

    def set_images(self, names: Sequence[str], sizes: Sequence[str], keep: int) -> None:
        """The image menu's entries ("0: cat (451×300)"), `keep` selected."""
        with self.quietly():
            self.image.options = [(f"{i}: {name} ({size})", i) for i, (name, size) in enumerate(zip(names, sizes))]
            self.image.value = keep

    def set_classes(self, names: Sequence[str], probs: np.ndarray, chosen: int | None) -> None:
        """Classes sorted by the model's score, the chosen (or top) one selected; the versus menu likewise."""
        order = np.argsort(-probs)
        options = [(f"{names[i]} · {probs[i]:.2f}", int(i)) for i in order]
        with self.quietly():
            self.class_.options = options
            self.class_.value = int(order[0]) if chosen is None else int(chosen)
            versus = self.versus.value
            self.versus.options = [("the runner-up", -1)] + options
            self.versus.value = versus if versus is not None and versus < len(names) else -1

    def set_layers(self, layout: ModelLayout, layer: str) -> None:
        """The layer menu as the model is now, `layer` selected."""
        with self.quietly():
            self.layer.options = layer_options(layout)
            self.layer.value = layer
        self.sync_scrub()

    def sync_scrub(self) -> None:
        """The depth slider on the layer control's layer, through the same layers."""
        paths = [path for _, path in self.layer.options]
        with self.quietly():
            if list(self.scrub.options) != paths:
                self.scrub.options = paths
            self.scrub.value = self.layer.value

    def offer_colormap(self, name: str) -> None:
        """Add a colormap that is not in the menu (the browser's tables first: it links the value)."""
        if name not in self.colormap.options:
            self.canvas.set_colormaps(colormap_options(name))
            self.colormap.options = colormap_options(name)

    def size_overlay(self, shape: tuple[int, int]) -> None:
        """The overlay alone: the picture's own size, small ones enlarged, large ones within the panel; its
        colorbar beside it at the same height."""
        size(self.overlay, *panel_size(shape))
        size(self.canvas, *panel_size(shape))

    def size_side_by_side(self, shape: tuple[int, int]) -> None:
        """Picture, overlay and heatmap at one height, together at most ROW_WIDTH wide."""
        h, w = shape
        with PILImage.open(io.BytesIO(self.heat.value)) as figure_png:
            heat_w, heat_h = figure_png.size
        height = min(PANEL_HEIGHT, max(h, 160), int(ROW_WIDTH / (2 * w / h + heat_w / heat_h)))
        for view, aspect in (
            (self.plain, w / h),
            (self.overlay, w / h),
            (self.canvas, w / h),
            (self.heat, heat_w / heat_h),
        ):
            size(view, height, round(height * aspect))

    def close(self) -> None:
        for link in self.links:
            link.close()
        for child in self.named().values():
            child.close()


def px(width: int, **more: str) -> widgets.Layout:
    return widgets.Layout(width=f"{width}px", **more)


def row(*children: widgets.Widget, **more: str) -> widgets.HBox:
    """A row that wraps rather than overflow a narrow cell."""
    return widgets.HBox(list(children), layout=widgets.Layout(flex_flow="row wrap", **more))


def size(view: widgets.Widget, height: int, width: int) -> None:
    with view.layout.hold_sync():
        view.layout.height, view.layout.width = f"{height}px", f"{width}px"


def panel_size(shape: tuple[int, int]) -> tuple[int, int]:
    """(height, width) of the overlay alone: the picture's own size, small ones enlarged to
    MIN_DISPLAY_WIDTH wide, large ones within PANEL_WIDTH x PANEL_HEIGHT."""
    h, w = shape
    width = max(w, MIN_DISPLAY_WIDTH)
    scale = min(width / w, PANEL_WIDTH / w, PANEL_HEIGHT / h)
    return max(1, round(h * scale)), max(1, round(w * scale))


def show(view: widgets.Image, rgb: np.ndarray) -> None:
    """Put a picture in an Image widget, format and bytes in one message."""
    fmt, data = render.display_bytes(rgb)
    with view.hold_sync():
        view.format = fmt
        view.value = data


def method_tooltip(name: str) -> str:
    """What the Method control's tooltip says of a method: its family and what one map costs."""
    method = METHODS[name]
    return f"{method.label}: {method.family or 'a'} method; one map costs {method.cost}"


def layer_options(layout: ModelLayout) -> list[tuple[str, str]]:
    return [(f"{p} · {layout.layers[p].describe_shape()}", p) for p in layout.spatial_paths()]


def colormap_options(extra: str) -> list[str]:
    return list(render.COLORMAPS) + ([extra] if extra not in render.COLORMAPS else [])
