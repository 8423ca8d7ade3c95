"""CAMExplorer: controls <-> state <-> view. No maths here: the session computes, render draws.

Redraws are coalesced: a control change marks what is stale (the map, its colours, or only the blend) and
asks the running event loop for one redraw, so a burst of slider events in the kernel ends in a single
redraw of the last value. With no running loop (a script, a test) the redraw happens at once. Setting an
attribute (``ex.alpha = 0.3``) in a cell draws at once too, so the cell's own output and the saved widget
state show it; reading ``.cam`` or ``.overlay`` always brings the view up to date first.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import io
import os
import re
import sys
import types
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, NamedTuple

import ipywidgets as widgets
import keras
import numpy as np
from matplotlib.figure import Figure
from PIL import Image as PILImage

from camwidget import render
from camwidget.errors import CAMError
from camwidget.explain import Options
from camwidget.explorer import compare
from camwidget.explorer.canvas import PAGE_STYLE, OverlayCanvas, link_controls
from camwidget.explorer.check import RANDOMIZED_LAYERS, MapCheck, check_map
from camwidget.explorer.compare import Cell, Question
from camwidget.explorer.controller import BLEND, COLOURS, MAP, Controller
from camwidget.explorer.search import match_classes, option_label
from camwidget.explorer.session import ExplorerSession, View
from camwidget.explorer.static_view import view_png
from camwidget.explorer.status import Status, computing_html, status_html, status_of
from camwidget.inputs.feed import make_feed
from camwidget.inputs.images import ImageLike, Images
from camwidget.methods import METHODS, get_method
from camwidget.pipeline.outputs import html_text

_MIN_DISPLAY_WIDTH = 384  # px on screen for small images
# Sizes on screen, in px, so that every view fits a 900 px notebook cell and its panels line up.
_PANEL_WIDTH = 600  # the overlay alone, at most (its colorbar beside it)
_PANEL_HEIGHT = 560
_ROW_WIDTH = 640  # side by side: picture, overlay and heatmap together
_COLORBAR_WIDTH = 64
_GRID_WIDTH = 800
MODES = {
    "Overlay": None,
    "Side by side": None,
    "Compare methods": "methods",
    "Compare layers": "layers",
    "Compare classes": "classes",
    "Check map": "check",
}
_SEARCH_LIST = 30  # matches listed under the class search box
_SAVE_FORMATS = {
    ".png": "PNG",
    ".jpg": "JPEG",
    ".jpeg": "JPEG",
    ".bmp": "BMP",
    ".tif": "TIFF",
    ".tiff": "TIFF",
    ".webp": "WEBP",
}


class _Request(NamedTuple):
    image: int
    layer: str
    class_index: int | None
    method: str
    score: str
    eigen_smooth: bool
    aug_smooth: bool
    mode: str = "Overlay"  # the View control's value
    versus: int | None = None  # a class comparison's class B (None: the runner-up)
    frame: int = 0  # a clip's frame shown (its map's slice)
    randomize: bool = False  # a Check view: run the randomisation check too (its button)

    @property
    def compare(self) -> str | None:
        """A Compare view's kind, else None."""
        return MODES[self.mode]

    def controls(self, shown_class: int) -> dict[str, Any]:
        """The view controls' values that ask for this request (its class as shown)."""
        return {
            "image": self.image,
            "layer": self.layer,
            "method": self.method,
            "class": shown_class,
            "score": self.score,
            "eigen-smooth": self.eigen_smooth,
            "aug-smooth": self.aug_smooth,
            "mode": self.mode,
            "versus": -1 if self.versus is None else self.versus,
            "frame": self.frame,
            "follow_top": self.class_index is None,
        }


class _Result(NamedTuple):
    view: View
    cells: list[Cell] | None  # a Compare view's grid
    check: MapCheck | None = None  # a Check view's curves (and randomisation)


class Prediction(NamedTuple):
    class_index: int
    name: str
    score: float


class CAMExplorer(widgets.VBox):
    """A live Grad-CAM explorer for a Keras model and one or more images.

    Settable: ``.layer .class_index .method .score .eigen_smooth .aug_smooth .alpha .colormap .image_index``
    (kept in step with the controls). Read-only: ``.cam`` (h, w float32 in [0, 1]), ``.overlay`` (H, W, 3
    uint8 at the image's own size), ``.predictions`` (top classes with names and scores). ``.save(path)``
    writes the overlay; ``.refresh()`` forgets everything computed for the model; ``.close()`` lets it go.

    images: paths, file bytes, PIL images or arrays, or a list of them; turned upright by their EXIF tag.
    Arrays are read by dtype (uint8 0-255, uint16 0-65535, floats 0-1; see ``images.read_picture``);
    ``value_range=(low, high)`` says otherwise. Files over ``max_pixels`` are refused before decoding.
    ``max_side``: a model that takes any size sees images at most this long on their longer side.
    ``warm_up``: after each view, compute every other layer's map ingredients in a background thread, so
    that the first switch to another layer is instant (False: compute on demand, less memory and CPU).
    ``background``: compute the maps that control changes ask for in a worker thread, so the controls stay
    usable (a progress bar shows after 0.3 s, a newer request supersedes an older one, opacity and colormap
    apply at once meanwhile). None: when made in a running event loop, as in a notebook's kernel. Setting an
    attribute from code always computes at once and raises what stops it.

    Beyond pictures, by what the model takes: a model of 1-D signals (L, C) takes signals (arrays (L, C) or
    (L,), a batch, a list or a dict), drawn as lines over a band coloured by the map; a model of clips or
    volumes (T, H, W, C) takes clips ((T, H, W, C) arrays, a list of frames, or several), shown a frame at a
    time with a Frame slider (``.frame``); a vision transformer's token layers are drawn on their patch grid.
    ``input`` and ``other_inputs``: for a model with several inputs, the one the images go to and one value
    for each other input, shared by every image (see compute_cam). ``grid`` and ``leading_tokens``: a vision
    transformer's patch grid and the tokens before it, where they are not found from the token count (see
    compute_cam); every token layer is read so.

    Beyond classes: a segmentation model's (per-pixel) classes explain the pixels the model predicts as that
    class, and show the share of the pixels each covers; ``target`` (any function of the output giving one
    score per image, see camwidget.targets) explains that score instead of a class.
    """

    def __init__(
        self,
        model: keras.Model,
        images: Images,
        *,
        preprocess: Callable[[np.ndarray], np.ndarray] | str | None = None,
        class_names: Sequence[str] | Mapping[int, str] | None = None,
        layer: str | None = None,
        class_index: int | None = None,
        method: str = "gradcam",
        alpha: float = 0.5,
        colormap: str = "jet",
        output: str | int | None = None,
        score: str = "auto",
        eigen_smooth: bool = False,
        aug_smooth: bool = False,
        max_side: int = 1024,
        value_range: tuple[float, float] | None = None,
        max_pixels: int = 50_000_000,
        warm_up: bool = True,
        background: bool | None = None,
        input: str | int | None = None,
        other_inputs: Any = None,
        target: Any = None,
        grid: tuple[int, int] | None = None,
        leading_tokens: int | None = None,
    ) -> None:
        Options(method, score, eigen_smooth, aug_smooth).checked()  # bad options fail before any work
        self._session = ExplorerSession(
            model,
            images,
            preprocess,
            class_names,
            output,
            max_side=max_side,
            value_range=value_range,
            max_pixels=max_pixels,
            warm_up=warm_up,
            feed=make_feed(model, input, other_inputs),
            target=target,
            grid=grid,
            leading_tokens=leading_tokens,
        )
        layout = self._session.layout(0)
        explainer = self._session.explainer  # grid=, leading_tokens=: the start layer read so, or the error why not
        start_layer = layout.resolve(layer, explainer.grid, explainer.leading_tokens).path
        _check_alpha(alpha)
        render.colormap_table(colormap)
        method = get_method(method).name
        if class_index is not None:
            _check_class(class_index, self._session.n_classes)
        self._follow_top = class_index is None
        self._syncing = False
        self._view: View | None = None
        self._notice: str | None = None  # said once in the status line, then dropped
        self.status = Status()  # what the status line says; drawn from this by status_html
        self._status_error = False  # the status line shows an error (the next change that works clears it)
        self._good: dict[str, Any] | None = None  # the controls' values for the last view drawn
        self._shown_request: _Request | None = None  # what the view on screen was computed for
        self._heat: np.ndarray | None = None
        self._overlay: np.ndarray | None = None
        self._shown_image = 0  # the image of the view on screen (the image control may be ahead of it)
        self._shown_frame = 0  # a clip's frame on screen
        screen = types.SimpleNamespace(
            catch_up=self._catch_up,
            request=self._request,
            compute=self._compute,
            draw=self._draw,
            show=self._show_result,
            failed=self._failed,
            busy=self._show_busy,
            progress=self._show_progress,
        )
        self._controller = Controller(screen, _running_loop() if background is not False else None)

        wide = {"description_width": "70px"}
        self._image_control = widgets.Dropdown(description="Image", style=wide, layout=_px(400))
        kind = self._session.kind
        self._upload = widgets.FileUpload(
            accept="image/*",
            multiple=False,
            description="Upload image",
            layout=widgets.Layout(display=None if kind == "image" else "none"),  # pictures only
        )
        self._frame_control = widgets.IntSlider(
            description="Frame",
            min=0,
            max=max(0, self._session.frames(0) - 1),
            value=0,
            style=wide,
            continuous_update=True,
            layout=_px(400, display=None if kind == "volume" else "none"),
        )
        self._layer_control = widgets.Dropdown(
            description="Layer",
            options=_layer_options(layout),
            value=start_layer,
            style=wide,
            layout=_px(400),
        )
        self._method_control = widgets.Dropdown(
            description="Method",
            options=[(m.label, m.name) for m in METHODS.values()],
            value=method,
            style=wide,
            layout=_px(260),
        )
        self._scrub = widgets.SelectionSlider(
            description="Depth",
            options=layout.spatial_paths(),
            value=start_layer,
            style=wide,
            readout=False,
            continuous_update=True,
            layout=_px(400),
        )
        self._class_control = widgets.Dropdown(description="Class", style=wide, layout=_px(340))
        self._class_search = widgets.Combobox(
            placeholder="find a class: name or number, Enter",
            options=self._search_options(""),
            ensure_option=False,
            layout=_px(240),
        )
        self._search_hint = widgets.HTML(layout=widgets.Layout(width="auto"))
        self._alpha_control = widgets.FloatSlider(
            description="Opacity",
            min=0.0,
            max=1.0,
            step=0.05,
            value=alpha,
            continuous_update=True,
            style=wide,
            layout=_px(280),
        )
        self._colormap_control = widgets.Dropdown(
            description="Colormap", options=_colormap_options(colormap), value=colormap, style=wide, layout=_px(220)
        )
        self._mode_control = widgets.Dropdown(
            description="View",
            options=list(MODES),
            value="Overlay",
            style={"description_width": "40px"},
            layout=_px(230),
        )
        self._versus_control = widgets.Dropdown(
            description="rather than", style={"description_width": "80px"}, layout=_px(300, display="none")
        )
        self._score_control = widgets.Dropdown(
            description="Score",
            options=[("logits (before softmax)", "auto"), ("probability", "probability")],
            value=score,
            style=wide,
            layout=_px(300),
        )
        self._eigen_control = widgets.Checkbox(
            value=bool(eigen_smooth), description="eigen-smooth", indent=False, layout=widgets.Layout(width="auto")
        )
        self._aug_control = widgets.Checkbox(
            value=bool(aug_smooth),
            description="aug-smooth (6 passes)",
            indent=False,
            layout=widgets.Layout(width="auto"),
        )
        self._overlay_view = widgets.Image(format="png", layout=widgets.Layout(object_fit="contain"))
        self._colorbar_view = widgets.Image(format="png", layout=widgets.Layout(object_fit="contain"))
        self._canvas = OverlayCanvas(alpha=float(alpha))  # the overlay, blended in the browser
        self._canvas.set_colormaps(_colormap_options(colormap))
        self._canvas.colormap_index = self._colormap_control.index
        self._links = link_controls(self._canvas, self._alpha_control, self._colormap_control)
        self._page_style = widgets.HTML(PAGE_STYLE, layout=widgets.Layout(display="none"))
        self._plain_view = widgets.Image(format="png", layout=widgets.Layout(display="none", object_fit="contain"))
        self._heat_view = widgets.Image(format="png", layout=widgets.Layout(display="none", object_fit="contain"))
        self._grid_view = widgets.Image(
            format="png", layout=widgets.Layout(display="none", width="calc(100% - 8px)", max_width=f"{_GRID_WIDTH}px")
        )
        self._status = widgets.HTML(layout=widgets.Layout(width="calc(100% - 8px)"))  # less its margins
        self._progress = widgets.IntProgress(min=0, max=1, value=0, bar_style="info", layout=_px(160))
        self._busy_text = widgets.HTML()
        self._busy = widgets.HBox([self._progress, self._busy_text], layout=widgets.Layout(display="none"))
        self._cells: list[Cell] | None = None  # the comparison grid's maps, in a Compare view
        self._check: MapCheck | None = None  # the Check view's result
        self._randomize = False  # the Check view's button asked for the randomisation check
        self._randomize_button = widgets.Button(
            description="Randomisation check",
            tooltip=f"re-initialise the top {RANDOMIZED_LAYERS} layers of a copy, "
            "one at a time, and show the map after each",
            layout=_px(200, display="none"),
        )
        self._refresh_image_options(0)
        _show(self._plain_view, self._session.display_pixels(0, 0))
        self._refresh_class_options(class_index)

        super().__init__(
            children=[
                _row(self._image_control, self._upload),
                _row(self._layer_control, self._method_control),
                _row(self._scrub),
                _row(self._frame_control),
                _row(self._score_control, self._eigen_control, self._aug_control),
                _row(self._class_control, self._class_search, self._search_hint),
                _row(
                    self._alpha_control,
                    self._colormap_control,
                    self._mode_control,
                    self._versus_control,
                    self._randomize_button,
                ),
                _row(
                    self._plain_view,
                    self._overlay_view,
                    self._canvas,
                    self._heat_view,
                    self._colorbar_view,
                    align_items="center",
                ),
                self._grid_view,
                self._busy,
                self._status,
                self._page_style,
            ]
        )
        self._show_panels_for("Overlay")
        self.add_class("camwidget-explorer")
        for name, control in self._named_controls().items():
            control.add_class(f"camwidget-{name}")  # stable hooks for styling and browser tests
        self._observe()
        error = self._controller.redraw_now(MAP)
        if error is not None:  # the settings given cannot be shown at all: say so now, not in a status line
            self.close()
            raise error

    # -- public attributes ---------------------------------------------------------------------------------

    @property
    def layer(self) -> str:
        return self._layer_control.value

    @layer.setter
    def layer(self, name: str) -> None:
        self._catch_up()
        self._set_and_draw(self._layer_control, self._session.layout(self.image_index).resolve(name).path)

    @property
    def class_index(self) -> int:
        return int(self._class_control.value)

    @class_index.setter
    def class_index(self, value: int | None) -> None:
        self._catch_up()
        if value is None:
            self._class_control.value = int(np.argmax(self._session.probabilities(self.image_index, self.layer)))
            self._follow_top = True  # after the control's observer, which marks any change as a user's choice
            self._flush()
            return
        _check_class(value, self._session.n_classes)
        self._follow_top = False
        self._set_and_draw(self._class_control, int(value))

    @property
    def method(self) -> str:
        return self._method_control.value

    @method.setter
    def method(self, name: str) -> None:
        self._set_and_draw(self._method_control, get_method(name).name)

    @property
    def score(self) -> str:
        """ "auto" (the logits before a final softmax or sigmoid) or "probability"."""
        return self._score_control.value

    @score.setter
    def score(self, value: str) -> None:
        Options(score=value).checked()
        self._set_and_draw(self._score_control, value)

    @property
    def eigen_smooth(self) -> bool:
        return bool(self._eigen_control.value)

    @eigen_smooth.setter
    def eigen_smooth(self, value: bool) -> None:
        Options(eigen_smooth=value).checked()
        self._set_and_draw(self._eigen_control, bool(value))

    @property
    def aug_smooth(self) -> bool:
        return bool(self._aug_control.value)

    @aug_smooth.setter
    def aug_smooth(self, value: bool) -> None:
        Options(aug_smooth=value).checked()
        self._set_and_draw(self._aug_control, bool(value))

    @property
    def alpha(self) -> float:
        return float(self._alpha_control.value)

    @alpha.setter
    def alpha(self, value: float) -> None:
        _check_alpha(value)
        self._alpha_control.value = float(value)
        self._flush()

    @property
    def colormap(self) -> str:
        return self._colormap_control.value

    @colormap.setter
    def colormap(self, name: str) -> None:
        render.colormap_table(name)
        if name not in self._colormap_control.options:
            self._canvas.set_colormaps(_colormap_options(name))  # the browser's tables first: it links the value
            self._colormap_control.options = _colormap_options(name)
        self._colormap_control.value = name
        self._flush()

    @property
    def image_index(self) -> int:
        return int(self._image_control.value)

    @image_index.setter
    def image_index(self, value: int) -> None:
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise TypeError(f"image_index must be an int, not {type(value).__name__}")
        if not 0 <= value < len(self._session.pixels):
            raise CAMError(f"image_index {value} is out of range: there are {len(self._session.pixels)} images")
        self._set_and_draw(self._image_control, int(value))

    @property
    def cam(self) -> np.ndarray:
        """The current map, float32 in [0, 1] at the layer's resolution: (h, w) for a picture, (l,) for a
        signal, (d, h, w) for a clip or volume (the overlay shows the shown frame's slice)."""
        self._flush()
        return (self._view.cam if self._view.full is None else self._view.full).copy()

    @property
    def frame(self) -> int:
        """The frame of a clip shown (0 for pictures and signals)."""
        return int(self._frame_control.value)

    @frame.setter
    def frame(self, value: int) -> None:
        frames = self._session.frames(self.image_index)
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not 0 <= value < frames:
            raise CAMError(
                f"frame must be an int from 0 to {frames - 1} (this {'clip' if frames > 1 else 'image'} "
                f"has {frames} frame{'s' if frames > 1 else ''}), not {value!r}"
            )
        self._set_and_draw(self._frame_control, int(value))

    @property
    def overlay(self) -> np.ndarray:
        """The overlay, (H, W, 3) uint8 at the image's own size (the screen shows it at most 1024 px wide)."""
        self._flush()
        if self._overlay is None:
            self._overlay = render.overlay(
                self._session.picture(self._shown_image, self._shown_frame), self._view.cam, self.alpha, self.colormap
            )
        return self._overlay.copy()

    @property
    def predictions(self) -> list[Prediction]:
        """The top 5 classes for the current image, best first."""
        probs = self._session.probabilities(self.image_index, self.layer)
        top = np.argsort(-probs)[:5]
        return [Prediction(int(i), self._session.class_names[i], float(probs[i])) for i in top]

    @property
    def pixels(self) -> np.ndarray:
        """The current picture as read: RGB uint8 (H, W, 3), upright (a signal's line picture; a clip's frame)."""
        return self._session.picture(self.image_index, self.frame).copy()

    @property
    def model_input(self) -> np.ndarray:
        """The current picture as the model sees it, (1, H, W, C): resized and preprocessed. Give it to
        compute_cam to get the same map from code."""
        return self._session.model_input(self.image_index).copy()

    @property
    def class_names(self) -> list[str]:
        return list(self._session.class_names)

    @property
    def controls(self) -> dict[str, widgets.Widget]:
        """The explorer's widgets by name ("layer", "class", "alpha", "upload", "overlay", "status", …), to
        style them, link them to other widgets, or drive them from code as a browser would."""
        return self._named_controls()

    @property
    def session(self) -> ExplorerSession:
        """The explorer's model side (caches, counters such as ``model_calls``), for tests and diagnostics."""
        return self._session

    @property
    def preprocessing(self) -> str:
        """What was done to the pixels before the model saw them."""
        return self._session.preprocessing.description

    def add_image(
        self, image: ImageLike, name: str | None = None, value_range: tuple[float, float] | None = None
    ) -> int:
        """Add an image and show it; returns its index. A picture that cannot be used raises, and nothing
        changes."""
        index = self._add_image(image, name, value_range)
        self._flush()
        return index

    def _add_image(self, image: ImageLike, name: str | None, value_range: tuple[float, float] | None = None) -> int:
        """Add and select an image; its view is drawn as any control change is (in the background if so)."""
        index = self._session.add_image(image, name or f"image {len(self._session.pixels)}", value_range)
        self._refresh_image_options(self.image_index)
        self._image_control.value = index
        return index

    def compare(
        self,
        kind: str = "methods",
        *,
        methods: Sequence[str] | None = None,
        layers: Sequence[str] | None = None,
        versus: int | None = None,
    ) -> Figure:
        """The current image's maps side by side, as a matplotlib Figure (off screen; ``fig.savefig(...)``).

        kind="methods": one map per method (default: every method that needs no further pass);
        "layers": a depth strip of spatial layers from early to late (or `layers`); "classes": the current
        class A, a class B (`versus`; default the runner-up) and "why A rather than B", the Grad-CAM of
        y_A - y_B. Maps come from the explorer's caches where it has them."""
        compare.check_kind(kind)
        self._flush()
        question = Question(
            self._shown_image,
            self._view.layer.path,
            self._view.class_index,
            self.method,
            self.score,
            kind,
            tuple(methods) if methods else None,
            tuple(layers) if layers else None,
            versus,
            self._shown_frame,
        )
        cells = compare.cells_for(self._session, question)
        title = f"{self._session.names[self._shown_image]}: compare {kind}"
        return compare.figure(
            self._session.display_pixels(self._shown_image, self._shown_frame),
            cells,
            self.colormap,
            self.alpha,
            title,
            width_px=_GRID_WIDTH,
        )

    def check(self, randomize: bool = False) -> MapCheck:
        """Is the current map right? Its deletion and insertion curves beside a random map's (areas as numbers:
        ``.deletion.area``, ``.insertion.area``), and with `randomize` the cascading randomisation check of its
        top layers (on a copy). Shows as a figure when it is a cell's last value; ``.figure()`` for matplotlib."""
        self._flush()
        return self._check_of(self._shown_image, self._view, randomize)

    def _check_of(self, image: int, view: View, randomize: bool) -> MapCheck:
        session = self._session
        if session.kind != "image":
            raise CAMError(f"the map check works on pictures; this explorer shows {session.kind}s")
        if session.explainer.target is not None:
            raise CAMError("the map check scores a class's probability; this explorer explains a target")
        feed = session.explainer.feed  # several inputs: the others' values go with the picture, as in the view
        fed = {} if feed is None else {"input": feed.index, "other_inputs": dict(zip(feed.other_names, feed.others))}
        return check_map(
            session.explainer.model,
            session.model_input(image),
            view.cam,
            view.class_index,
            layer=view.layer.path,
            method=view.method,
            output=session.output,
            randomize=randomize,
            pixels=session.display_pixels(image),
            **fed,
            title=f"{session.names[image]}: {METHODS[view.method].label} of {session.class_names[view.class_index]} "
            f"at {view.layer.path}",
        )

    def save(self, path: str | os.PathLike) -> None:
        """Write the overlay at the image's own size, as PNG, JPEG, BMP, TIFF or WebP (by the extension)."""
        path = os.fspath(path)
        extension = os.path.splitext(path)[1].lower()
        if extension not in _SAVE_FORMATS:
            raise CAMError(
                f"cannot save as {extension or 'a file without an extension'!r}: give a name ending in one of "
                f"{', '.join(_SAVE_FORMATS)} (e.g. 'cat_cam.png')"
            )
        PILImage.fromarray(self.overlay).save(path, format=_SAVE_FORMATS[extension])

    def refresh(self) -> None:
        """Recompute the view from the model as it is now, forgetting everything computed and traced before.

        Changes to the model are noticed without this: ``fit``, ``set_weights``, ``load_weights``, any
        training loop, ``trainable`` flags, layer attributes such as ``activation``, added layers. The one
        change that may go unseen is a few values of a large weight tensor edited in place while all the
        values sampled from it stay the same (see :mod:`camwidget.engines.model_watch`); call this after such an edit.
        """
        self._controller.cancel_in_flight()
        self._session.refresh()
        self._follow_model()
        self._controller.redraw_now(MAP)

    # Read through the class at interpreter exit, when ipywidgets' __del__ calls close() after this module's
    # globals, the builtins and sys.modules may already be gone (nothing can be imported then).
    _finalizing = staticmethod(sys.is_finalizing)

    def close(self) -> None:
        """Free the widgets and the caches, and let the model go with everything traced for it."""
        if self._finalizing():  # the process is ending and frees everything: do nothing, say nothing
            return
        if "_status" not in vars(self):  # construction failed before the widgets existed
            session = vars(self).get("_session")
            if session is not None:
                session.close()
            return
        self._controller.close()
        self._session.close()
        for link in self._links:
            link.close()
        for child in self._all_controls():
            child.close()
        for box in self.children:
            box.close()
        super().close()

    # -- wiring --------------------------------------------------------------------------------------------

    def _named_controls(self) -> dict[str, widgets.Widget]:
        return {
            "image": self._image_control,
            "upload": self._upload,
            "layer": self._layer_control,
            "method": self._method_control,
            "class": self._class_control,
            "class-search": self._class_search,
            "alpha": self._alpha_control,
            "colormap": self._colormap_control,
            "mode": self._mode_control,
            "overlay": self._overlay_view,
            "plain": self._plain_view,
            "heatmap": self._heat_view,
            "colorbar": self._colorbar_view,
            "grid": self._grid_view,
            "canvas": self._canvas,
            "depth": self._scrub,
            "versus": self._versus_control,
            "frame": self._frame_control,
            "randomize": self._randomize_button,
            "status": self._status,
            "search-hint": self._search_hint,
            "progress": self._progress,
            "busy": self._busy_text,
            "score": self._score_control,
            "eigen-smooth": self._eigen_control,
            "aug-smooth": self._aug_control,
        }

    def _all_controls(self) -> list[widgets.Widget]:
        return list(self._named_controls().values())

    def _observe(self) -> None:
        watch = [
            (self._image_control, self._on_image),
            (self._layer_control, self._on_layer),
            (self._scrub, self._on_scrub),
            (self._versus_control, lambda _: self._schedule(MAP)),
            (self._frame_control, lambda _: self._schedule(MAP)),
            (self._method_control, lambda _: self._schedule(MAP)),
            (self._class_control, self._on_class),
            (self._class_search, self._on_search),
            (self._alpha_control, lambda _: self._schedule(BLEND)),
            (self._colormap_control, lambda _: self._schedule(COLOURS)),
            (self._mode_control, self._on_mode),
            (self._score_control, lambda _: self._schedule(MAP)),
            (self._eigen_control, lambda _: self._schedule(MAP)),
            (self._aug_control, lambda _: self._schedule(MAP)),
            (self._upload, self._on_upload),
        ]
        for control, handler in watch:
            control.observe(self._guarded(handler), names="value")
        self._class_search.on_msg(self._on_search_submit)
        self._randomize_button.on_click(self._on_randomize)

    def _on_randomize(self, _: widgets.Button) -> None:
        self._randomize = True
        self._schedule(MAP)

    def _guarded(self, handler: Callable[[dict], None]) -> Callable[[dict], None]:
        def run(change: dict) -> None:
            if not self._syncing:
                handler(change)

        return run

    def _on_image(self, _: dict) -> None:
        self._schedule(MAP)  # the class list follows when the new image's view lands (its scores come with it)

    def _on_layer(self, _: dict) -> None:
        self._sync_scrub()
        self._schedule(MAP)

    def _on_scrub(self, change: dict) -> None:
        self._layer_control.value = change["new"]  # the layer control's observer draws

    def _sync_scrub(self) -> None:
        """The depth slider on the layer control's layer, through the same layers."""
        paths = [path for _, path in self._layer_control.options]
        with self._syncing_controls():
            if list(self._scrub.options) != paths:
                self._scrub.options = paths
            self._scrub.value = self._layer_control.value

    def _on_class(self, _: dict) -> None:
        self._follow_top = False
        self._schedule(MAP)

    def _search_options(self, text: str) -> list[str]:
        """The search box's list: every class before anything is typed, then the matches, best first."""
        names = self._session.class_names
        chosen = range(len(names)) if not text.strip() else match_classes(text, names, limit=_SEARCH_LIST)
        return [option_label(i, names) for i in chosen]

    def _on_search(self, change: dict) -> None:
        """While typing: the matches listed (a pick from the list chooses at once)."""
        text = change["new"]
        names = self._session.class_names
        picked = re.fullmatch(r".*\((\d+)\)", text)
        if picked and int(picked.group(1)) < len(names) and text == option_label(int(picked.group(1)), names):
            self._search_hint.value = ""
            self._class_control.value = int(picked.group(1))
            return
        matches = match_classes(text, names)
        self._class_search.options = self._search_options(text)
        self._search_hint.value = (
            ""
            if not text.strip()
            else "<small>no class matches</small>"
            if not matches
            else f"<small>{len(matches)} match{'es' if len(matches) > 1 else ''}; Enter: "
            f"{html_text(option_label(matches[0], names))}</small>"
        )

    def _on_search_submit(self, _: widgets.Widget, content: dict, buffers: list) -> None:
        """Enter in the search box picks the best match."""
        if content.get("event") != "submit" or self._syncing:
            return
        text = self._class_search.value
        matches = match_classes(text, self._session.class_names)
        if not matches:
            self._show_status(error=f"no class matches {text!r}: type part of a class name or its number")
            return
        with self._syncing_controls():
            self._class_search.value = option_label(matches[0], self._session.class_names)
        self._search_hint.value = ""
        self._class_control.value = matches[0]

    def _on_mode(self, change: dict) -> None:
        self._show_panels_for(change["new"])
        self._schedule(MAP if MODES[change["new"]] else COLOURS)  # a grid needs its maps

    def _show_panels_for(self, mode: str) -> None:
        kind = MODES[mode]
        side = mode == "Side by side"
        self._plain_view.layout.display = self._heat_view.layout.display = "inline-block" if side else "none"
        self._overlay_view.layout.display = self._canvas.layout.display = "none" if kind else "inline-block"
        self._colorbar_view.layout.display = "inline-block" if mode == "Overlay" else "none"
        self._grid_view.layout.display = "block" if kind else "none"
        self._versus_control.layout.display = "flex" if kind == "classes" else "none"
        self._randomize_button.layout.display = None if kind == "check" else "none"

    def _on_upload(self, change: dict) -> None:
        files = change["new"]
        if not files:
            return
        for item in files:
            name = item.get("name", "upload")
            try:
                self._add_image(bytes(item["content"]), name)
            except Exception as exc:  # noqa: BLE001 - whatever it is, the user must read it, not lose it
                kind = "" if isinstance(exc, (CAMError, FileNotFoundError)) else f"{type(exc).__name__}: "
                self._show_status(error=f"could not use {name!r}: {kind}{exc}")
            finally:
                with self._syncing_controls():
                    self._upload.value = ()

    def _refresh_image_options(self, keep: int) -> None:
        """The image selector's entries, `keep` selected, without triggering a redraw."""
        with self._syncing_controls():
            self._image_control.options = [
                (f"{i}: {name} ({p.shape[1]}×{p.shape[0]})", i)
                for i, (name, p) in enumerate(zip(self._session.names, self._session.pixels))
            ]
            self._image_control.value = keep

    def _catch_up(self) -> bool | None:
        """If the model changed since the view was drawn, bring the controls up to it: True if it changed,
        False if not, None if it can no longer be shown (said in the status line)."""
        if self._view is None or not self._session.sync():
            return False
        try:
            self._follow_model()
        except (CAMError, ValueError, TypeError) as exc:
            self._show_status(error=f"the model changed, and it cannot be shown any more: {exc}")
            return None
        self._controller.mark(MAP)
        return True

    def _follow_model(self) -> None:
        """After the model changed: its layers and classes as they are now in the dropdowns; a layer or class
        that no longer exists gives way to the default layer or the top class, as the status line says."""
        layout = self._session.layout(self.image_index)
        layer = self.layer if self.layer in layout.spatial_paths() else layout.default_path()
        if layer != self.layer:
            self._notice = f"layer {self.layer} is no longer in the model, so {layer} is shown"
        with self._syncing_controls():
            self._layer_control.options = _layer_options(layout)
            self._layer_control.value = layer
        self._sync_scrub()
        keep = not self._follow_top and self.class_index < self._session.n_classes
        if not self._follow_top and not keep:
            self._notice = (
                f"class {self.class_index} is no longer one of the model's classes, so its top class is shown"
            )
        self._follow_top = self._follow_top or not keep
        self._class_search.options = self._search_options(self._class_search.value)
        self._refresh_class_options(self.class_index if keep else None)

    def _refresh_class_options(self, chosen: int | None, probs: np.ndarray | None = None) -> None:
        """Classes sorted by the model's score for the current image, the chosen (or top) one selected."""
        if probs is None:
            probs = self._session.probabilities(self.image_index, self._layer_control.value)
        names = self._session.class_names
        order = np.argsort(-probs)
        options = [(f"{names[i]} · {probs[i]:.2f}", int(i)) for i in order]
        with self._syncing_controls():
            self._class_control.options = options
            self._class_control.value = int(order[0]) if chosen is None else int(chosen)
            versus = self._versus_control.value
            self._versus_control.options = [("the runner-up", -1)] + options
            self._versus_control.value = versus if versus is not None and versus < len(names) else -1

    @contextlib.contextmanager
    def _syncing_controls(self) -> Iterator[None]:
        """Set controls from code without their observers redrawing."""
        previous, self._syncing = self._syncing, True
        try:
            yield
        finally:
            self._syncing = previous

    # -- drawing -------------------------------------------------------------------------------------------

    def _schedule(self, level: int) -> None:
        self._controller.schedule(level)

    def _flush(self, now: bool = True) -> Exception | None:
        """Draw what is pending (see Controller.flush); the error, if the view could not be drawn."""
        return self._controller.flush(now)

    def _set_and_draw(self, control: widgets.Widget, value: Any) -> None:
        """For setters: set a control, draw now, and raise what stopped the view (the controls are then back
        on the last view drawn, as the status line says)."""
        with self._controller.deferred():
            control.value = value
        error = self._flush()
        if error is not None:
            raise error

    _VIEW_CONTROLS = (
        "image",
        "layer",
        "method",
        "class",
        "score",
        "eigen-smooth",
        "aug-smooth",
        "mode",
        "versus",
        "frame",
    )

    def _restore_last_view(self) -> None:
        """Put every control that chooses the view back where it was for the last view drawn."""
        good = self._good
        if good is None:
            return
        controls = self._named_controls()
        image_changed = controls["image"].value != good["image"]
        with self._syncing_controls():
            for name in self._VIEW_CONTROLS:
                if name != "class":
                    controls[name].value = good[name]
        if image_changed:
            self._refresh_class_options(good["class"], self._view.probabilities if self._view else None)
        else:
            with self._syncing_controls():
                controls["class"].value = good["class"]
        self._follow_top = good["follow_top"]
        self._sync_scrub()
        self._show_panels_for(self._mode_control.value)

    def _request(self) -> _Request:
        """The view the controls ask for now (class None: the image's top class)."""
        versus = self._versus_control.value
        return _Request(
            self.image_index,
            self.layer,
            None if self._follow_top else self.class_index,
            self.method,
            self.score,
            self.eigen_smooth,
            self.aug_smooth,
            self._mode_control.value,
            None if versus is None or versus < 0 else int(versus),
            int(self._frame_control.value),
            self._randomize and MODES[self._mode_control.value] == "check",
        )

    def _compute(self, request: _Request) -> _Result:
        """The map for `request`, and the grid's maps in a Compare view (any thread: the session computes
        one view at a time)."""
        view = self._session.view(
            request.image,
            request.layer,
            request.class_index,
            request.method,
            score=request.score,
            eigen_smooth=request.eigen_smooth,
            aug_smooth=request.aug_smooth,
            frame=request.frame,
        )
        cells = None
        if request.compare == "check":
            return _Result(view, None, self._check_of(request.image, view, request.randomize))
        if request.compare:
            question = Question(
                request.image,
                view.layer.path,
                view.class_index,
                request.method,
                request.score,
                request.compare,
                versus=request.versus,
                frame=request.frame,
            )
            cells = compare.cells_for(self._session, question)
        return _Result(view, cells)

    def _draw(self, level: int) -> None:
        """Redraw what `level` makes stale, computing here (raises what stops the view)."""
        if level >= MAP or self._view is None:
            request = self._request()
            self._install_view(request, self._compute(request))
            level = MAP
        self._paint(level)

    def _show_result(self, request: _Request, result: _Result) -> None:
        """A view computed in the background for `request` goes on screen."""
        self._install_view(request, result)
        self._paint(MAP)

    def _install_view(self, request: _Request, result: _Result) -> None:
        """Make `result` (computed for `request`) the one on screen, with the class list of its image."""
        view = result.view
        new_image = request.image != self._shown_image or self._view is None or request.frame != self._shown_frame
        self._view, self._shown_image, self._cells, self._check = view, request.image, result.cells, result.check
        if request.randomize:
            self._randomize = False  # the button runs it once, for the map it was pressed on
        self._shown_request, self._shown_frame = request, request.frame
        pixels = self._session.display_pixels(request.image, request.frame)
        self._upsampled = render.upsample(view.cam, pixels.shape[0], pixels.shape[1])
        self._heat = None
        if new_image and self._session.kind == "volume":
            with self._syncing_controls():
                self._frame_control.max = self._session.frames(request.image) - 1
        if new_image:
            _show(self._plain_view, pixels)
            self._canvas.show_picture(pixels)
        self._canvas.show_map(self._upsampled)
        if new_image or request.class_index is None:
            self._refresh_class_options(view.class_index, view.probabilities)

    def _paint(self, level: int) -> None:
        """Colour and blend the view on screen; level MAP also records it as the last good view."""
        pixels = self._session.display_pixels(self._shown_image, self._shown_frame)
        mode = self._mode_control.value
        if level >= COLOURS or self._heat is None:
            self._heat = render.colorize(self._upsampled, self.colormap)
        shown = render.blend(pixels, self._heat, self.alpha)
        self._overlay = None  # the full-size overlay, made when asked for (.overlay, .save)
        if MODES[mode] == "check" and self._check is not None:
            self._grid_view.value = self._check.figure_png(self.colormap, self.alpha, width_px=_GRID_WIDTH)
        elif MODES[mode] and self._cells is not None:
            title = f"{self._session.names[self._shown_image]}: {mode.lower()}"
            self._grid_view.value = compare.figure_png(
                compare.figure(pixels, self._cells, self.colormap, self.alpha, title, width_px=_GRID_WIDTH)
            )
        _show(self._overlay_view, shown)
        with self._canvas.hold_sync():  # the browser has these already (linked); the saved state must too
            self._canvas.alpha, self._canvas.colormap_index = self.alpha, self._colormap_control.index
        if mode == "Side by side" and level >= COLOURS:
            title = f"{self._session.class_names[self._view.class_index]}\n@ {self._view.layer.path}"
            self._heat_view.value = render.heatmap_figure_png(self._view.cam, self.colormap, title)
        if mode == "Overlay" and (level >= COLOURS or not self._colorbar_view.value):
            _size(self._overlay_view, *_panel_size(pixels.shape[:2]))
            _size(self._canvas, *_panel_size(pixels.shape[:2]))
            height = int(self._overlay_view.layout.height[:-2])
            self._colorbar_view.value = render.colorbar_png(self.colormap, height)
            _size(self._colorbar_view, height, _COLORBAR_WIDTH)
        elif mode == "Side by side" and level >= COLOURS:  # the heatmap panel changed: size them again
            self._size_side_by_side(pixels.shape[:2])
        if level < MAP and self._status_error:  # this change worked: the error line of an earlier one goes
            self._show_status()
        if level >= MAP:
            # what the view was computed for, not what the controls say now: they may have moved on already
            request = self._shown_request
            self._good = request.controls(self._view.class_index)
            self._show_status()
            if not request.aug_smooth:  # while this view is looked at, make every other layer ready
                self._session.warm_up(request.image, self._view.class_index, request.score)

    def _size_side_by_side(self, shape: tuple[int, int]) -> None:
        """Picture, overlay and heatmap at one height, together at most _ROW_WIDTH wide."""
        h, w = shape
        with PILImage.open(io.BytesIO(self._heat_view.value)) as figure_png:
            heat_w, heat_h = figure_png.size
        height = min(_PANEL_HEIGHT, max(h, 160), int(_ROW_WIDTH / (2 * w / h + heat_w / heat_h)))
        panels = (
            (self._plain_view, w / h),
            (self._overlay_view, w / h),
            (self._canvas, w / h),
            (self._heat_view, heat_w / heat_h),
        )
        for view, aspect in panels:
            _size(view, height, round(height * aspect))

    def _failed(self, exc: BaseException, level: int) -> None:
        if level >= MAP:
            self._restore_last_view()
        known = isinstance(exc, (CAMError, ValueError, TypeError))
        self._show_status(error=str(exc) if known else f"{type(exc).__name__}: {exc}")

    # -- the background worker's progress line -----------------------------------------------------------------

    def _show_busy(self, request: _Request | None, *, visible: bool = False) -> None:
        """The worker computes `request` (None: nothing; the progress line hidden); `visible`: show it now."""
        if request is None:
            self.status = self.status.with_computing(None)
            self._busy.layout.display = "none"
            return
        if visible:
            self._busy.layout.display = "flex"
            return
        self.status = self.status.with_computing(f"{METHODS[request.method].label} at {request.layer}")
        self._progress.value, self._progress.max = 0, 1
        self._busy_text.value = computing_html(f"{_doing(request)}…")

    def _show_progress(self, request: _Request, done: int, total: int, what: str, *, visible: bool) -> None:
        label = f"{_doing(request)}: {what}"
        if total:
            with self._progress.hold_sync():
                self._progress.max, self._progress.value = total, done
            label += f" {done} of {total}"
        self._progress.layout.visibility = "visible" if total else "hidden"
        self._busy_text.value = computing_html(label + "…")
        if visible:
            self._busy.layout.display = "flex"

    @property
    def busy(self) -> bool:
        """True while a map asked for by a control is being computed in the background."""
        return self._controller.busy

    def _show_status(self, error: str | None = None) -> None:
        """Say what is on screen, the notice once, and `error` (kept until a change works) in the status line."""
        self._status_error = error is not None
        status = status_of(
            self._session, self._view, self._shown_image, self._shown_frame, notice=self._notice, error=error
        )
        self._notice = None
        self.status = status.with_computing(self.status.computing)
        self._status.value = status_html(self.status)

    @property
    def status_text(self) -> str:
        """The status line as plain text (read from :attr:`status`, the value it is drawn from)."""
        return self.status.text()

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any] | None:
        """The widget's own bundle plus an ``image/png`` still of the view (static_view.view_png), which
        nbconvert, GitHub's viewer and the docs show where the widget cannot load; a live front end shows the
        widget, the bundle's first choice."""
        bundle = super()._repr_mimebundle_(**kwargs)
        still = view_png(self, self.status_text)
        if bundle is not None and still is not None:
            bundle["image/png"] = base64.b64encode(still).decode("ascii")
        return bundle


def _px(width: int, **more: str) -> widgets.Layout:
    return widgets.Layout(width=f"{width}px", **more)


def _row(*children: widgets.Widget, **more: str) -> widgets.HBox:
    """A row that wraps rather than overflow a narrow cell."""
    return widgets.HBox(list(children), layout=widgets.Layout(flex_flow="row wrap", **more))


def _size(view: widgets.Image, height: int, width: int) -> None:
    with view.layout.hold_sync():
        view.layout.height, view.layout.width = f"{height}px", f"{width}px"


def _panel_size(shape: tuple[int, int]) -> tuple[int, int]:
    """(height, width) of the overlay alone: the picture's own size, small ones enlarged to
    _MIN_DISPLAY_WIDTH wide, large ones within _PANEL_WIDTH x _PANEL_HEIGHT."""
    h, w = shape
    width = max(w, _MIN_DISPLAY_WIDTH)
    scale = min(width / w, _PANEL_WIDTH / w, _PANEL_HEIGHT / h)
    return max(1, round(h * scale)), max(1, round(w * scale))


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def _check_alpha(alpha: Any) -> None:
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float, np.floating, np.integer)):
        raise TypeError(f"alpha must be a number between 0 and 1, not {type(alpha).__name__}")
    if not 0.0 <= float(alpha) <= 1.0:
        raise CAMError(f"alpha (the overlay's opacity) must be between 0 and 1, not {alpha}")


def _check_class(value: Any, n_classes: int) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"class_index must be an int (or None for the top class), not {type(value).__name__}")
    if not 0 <= value < n_classes:
        raise CAMError(f"class_index {value} is out of range: the model has {n_classes} classes (0..{n_classes - 1})")


def _doing(request: _Request) -> str:
    """What the worker does for `request`, in words: the work the progress line names."""
    method = f"{METHODS[request.method].label} at {request.layer}"
    if request.compare == "check":
        return f"checking the {method} map" + (" (randomisation check)" if request.randomize else "")
    return f"computing {method}"


def _show(view: widgets.Image, rgb: np.ndarray) -> None:
    """Put a picture in an Image widget, format and bytes in one message."""
    fmt, data = render.display_bytes(rgb)
    with view.hold_sync():
        view.format = fmt
        view.value = data


def _layer_options(layout: Any) -> list[tuple[str, str]]:
    return [(f"{p} · {layout.layers[p].describe_shape()}", p) for p in layout.spatial_paths()]


def _colormap_options(extra: str) -> list[str]:
    return list(render.COLORMAPS) + ([extra] if extra not in render.COLORMAPS else [])
