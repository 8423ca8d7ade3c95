"""CAMExplorer: controls <-> state <-> view. No maths here: the session computes, the screen draws.

Redraws are coalesced: a control change marks what is stale (the map, its colours, or only the blend) and
asks the running event loop for one redraw, so a burst of slider events in the kernel ends in a single
redraw of the last value. With no running loop (a script, a test) the redraw happens at once. Setting an
attribute (``ex.alpha = 0.3``) in a cell draws at once too, so the cell's own output and the saved widget
state show it; reading ``.cam`` or ``.overlay`` always brings the view up to date first.

The settable attributes are traits (see :mod:`camwidget.explorer.attributes`): each follows its control, and a
value set from code is checked in ``@validate`` and shown by ``@observe`` (its control set, the view drawn), so
``ex.observe(callback, "layer")`` and ``traitlets.link((ex, "alpha"), (slider, "value"))`` work as on any widget.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import functools
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

import ipywidgets as widgets
import keras
import numpy as np
from matplotlib.figure import Figure
from PIL import Image as PILImage
from traitlets import Bunch, observe, validate

from camwidget import render
from camwidget.errors import CAMError
from camwidget.explain import Request
from camwidget.explorer import compare
from camwidget.explorer.attributes import (
    CHECKS,
    CONTROLS,
    CheckedBool,
    CheckedFloat,
    CheckedInt,
    CheckedUnicode,
    check_alpha,
)
from camwidget.explorer.check import MapCheck, check_view
from camwidget.explorer.compare import Question
from camwidget.explorer.controller import MAP, Controller
from camwidget.explorer.controls import GRID_WIDTH, Controls
from camwidget.explorer.driver import Driver
from camwidget.explorer.screen import Screen
from camwidget.explorer.search import ClassSearch
from camwidget.explorer.session import ExplorerSession, View
from camwidget.explorer.static_view import view_png
from camwidget.explorer.status import Status
from camwidget.explorer.view_request import modes_for
from camwidget.inputs.feed import make_feed
from camwidget.inputs.images import ImageLike, Images
from camwidget.limits import MAX_PIXELS, MAX_SIDE
from camwidget.targets import check_class_index

_SAVE_FORMATS = {
    ".png": "PNG",
    ".jpg": "JPEG",
    ".jpeg": "JPEG",
    ".bmp": "BMP",
    ".tif": "TIFF",
    ".tiff": "TIFF",
    ".webp": "WEBP",
}


class Prediction(NamedTuple):
    class_index: int
    name: str
    score: float


class CAMExplorer(widgets.VBox):
    """A live Grad-CAM explorer for a Keras model and one or more images.

    Settable: ``.layer .class_index .method .score .eigen_smooth .aug_smooth .alpha .colormap .image_index
    .frame``, traits kept in step with the controls (``observe`` and ``link`` them like any widget's). Read-only: ``.cam`` (h, w float32 in [0, 1]), ``.overlay`` (H, W, 3
    uint8 at the image's own size), ``.predictions`` (top classes with names and scores). ``.save(path)``
    writes the overlay; ``.refresh()`` forgets everything computed for the model; ``.close()`` lets it go.
    Beyond pictures, by what the model takes: signals (L, C) are drawn as lines over a band coloured by the
    map; clips or volumes (T, H, W, C) a frame at a time with a Frame slider (``.frame``); a vision
    transformer's token layers on their patch grid. A segmentation model's classes explain the pixels the
    model predicts as that class.

    Args:
        model: any Keras 3 model (never changed).
        images: paths, file bytes, PIL images or arrays, or a list or dict of them (by name), turned upright by
            their EXIF tag; arrays are read by dtype (uint8 0-255, uint16 0-65535, floats 0-1). Signals (L, C)
            or (L,) and clips (T, H, W, C) for models of those.
        preprocess: a function of RGB 0-255, a keras.applications family's name, "none", or None (detected).
        class_names: the classes' names (a list, or a dict by index).
        layer, class_index, method, score, eigen_smooth, aug_smooth, output, target, grid, leading_tokens,
            input, other_inputs: the first view, as compute_cam takes them (``target``: any function of the
            output giving one score per image, explained instead of a class).
        alpha: the overlay's opacity, 0 to 1.
        colormap: any of matplotlib's colormaps.
        max_side: a model that takes any size sees images at most this long on their longer side.
        value_range: (low, high) of array images, where their dtype does not say it.
        max_pixels: files over this many pixels are refused before decoding.
        warm_up: after each view, compute every other layer's map ingredients in a background thread, so that
            the first switch to another layer is instant (False: on demand, less memory and CPU).
        background: compute what control changes ask for in a worker thread, so the controls stay usable (a
            progress bar after 0.3 s, a newer request supersedes an older one); None: when made in a running
            event loop, as in a notebook's kernel. Setting an attribute from code always computes at once.
        note: what the model is, said in the status line and every figure's title (a model made by
            ``camwidget.demo.load_pretrained`` without its weights carries "random weights: ..." by itself).

    Raises:
        CAMError, TypeError: a setting or picture that cannot be right, naming what would be.
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
        max_side: int = MAX_SIDE,
        value_range: tuple[float, float] | None = None,
        max_pixels: int = MAX_PIXELS,
        warm_up: bool = True,
        background: bool | None = None,
        input: str | int | None = None,
        other_inputs: Any = None,
        target: Any = None,
        grid: tuple[int, int] | None = None,
        leading_tokens: int | None = None,
        note: str | None = None,
    ) -> None:
        check_alpha(alpha)
        render.colormap_table(colormap)
        given = dict(locals())  # the settings as given, passed on by name; what to explain is checked once, here
        question = Request.of(feed=make_feed(model, input, other_inputs), **{k: given[k] for k in _QUESTION})
        given["method"] = question.options.method  # by its canonical name
        self._session = session = ExplorerSession(model, images, request=question, **{k: given[k] for k in _SESSION})
        layout, explainer = session.layout(0), session.explainer
        start_layer = layout.resolve(layer, explainer.grid, explainer.leading_tokens).path
        if class_index is not None:
            check_class_index(class_index, session.n_classes)
        first = {name: given[name] for name in _FIRST_VALUES}
        self._c = Controls(
            session.kind, layout, start_layer, modes_for(session.kind), frames=session.frames(0), **first
        )
        self._screen = Screen(self._c, session)
        self._search = ClassSearch(self._c, session, lambda error: self._screen.say(error=error))
        self._driver = Driver(session, self._c, self._screen, self._search, follow_top=class_index is None)
        self._controller = Controller(self._driver, _running_loop() if background is not False else None)
        self._driver.controller = self._controller
        self._driver.refresh_image_options(0)
        self._driver.refresh_class_options(class_index)
        super().__init__(children=self._c.rows())
        self._c.show_panels_for("Overlay")
        self.add_class("camwidget-explorer")
        for name, control in self._c.named().items():
            control.add_class(f"camwidget-{name}")  # stable hooks for styling and browser tests
        self._wire()
        error = self._controller.redraw_now(MAP)
        if error is not None:  # the settings given cannot be shown at all: say so now, not in a status line
            self.close()
            raise error

    # -- public attributes: traits, each kept in step with its control -------------------------------------

    layer = CheckedUnicode(help="The layer shown (a name or path; set from code: resolved to its path).")
    method = CheckedUnicode(help="The CAM method's name.")
    score = CheckedUnicode(help='"auto" (the logits before a softmax), "probability" or "rest".')
    eigen_smooth = CheckedBool(help="Eigen-smooth the map (True/False).")
    aug_smooth = CheckedBool(help="Average six augmented passes (True/False).")
    alpha = CheckedFloat(help="The overlay's opacity, 0 to 1.")
    colormap = CheckedUnicode(help="The map's colormap (any of matplotlib's).")
    image_index = CheckedInt(help="The picture shown (its index).")
    frame = CheckedInt(help="A clip's frame shown (0 for pictures and signals).")
    class_index = CheckedInt(help="The class explained; set None to follow each picture's top class.")
    _pulling: tuple[str, Any] | None = None  # (attribute, value) its control is handing over right now

    @validate(*CHECKS)
    def _check_setting(self, proposal: Bunch) -> Any:
        """A value set from code is checked (raising what is wrong and what would be right); one handed over
        by its control is taken as it is. A value that changes nothing still draws what is pending."""
        name, value = proposal["trait"].name, proposal["value"]
        if self._handed_over(name, value):
            return value
        value = CHECKS[name](self._driver, value)
        if value == getattr(self, name):
            self._draw_now()
        return value

    @observe(*CHECKS)
    def _show_setting(self, change: Bunch) -> None:
        """A value set from code: its control follows and the view is drawn at once, raising what stopped it
        (every control, and with it every attribute, is then back on the last view drawn)."""
        name = change["name"]
        if self._handed_over(name, change["new"]):
            return  # the control moved first, and asked for its own redraw
        control = getattr(self._c, CONTROLS[name][0])
        chosen_by_check = name == "class_index"  # whether it follows the top class: the check said (set quietly)
        with self._controller.deferred(), self._c.quietly() if chosen_by_check else contextlib.nullcontext():
            control.value = change["new"]
        if chosen_by_check:
            self._controller.mark(MAP)
        self._draw_now()

    def _handed_over(self, name: str, value: Any) -> bool:
        return self._pulling is not None and self._pulling[0] == name and self._pulling[1] is value

    def _pull(self, name: str, _: object = None) -> None:
        """A control moved (the user, a link, or the explorer itself): its attribute follows, unchecked, to
        where the control is now (a view that failed may have put it back before this observer runs)."""
        control, kind = CONTROLS[name]
        if getattr(self._c, control).value is None:
            return  # a menu between two lists of options
        value = kind(getattr(self._c, control).value)
        previous, self._pulling = self._pulling, (name, value)
        try:
            self.set_trait(name, value)
        finally:
            self._pulling = previous

    def _wire(self) -> None:
        """The controls ask for redraws (Driver.wire); each settable attribute follows its control from now on."""
        self._driver.wire()
        for name, (control, _) in CONTROLS.items():
            getattr(self._c, control).observe(functools.partial(self._pull, name), names="value")
            self._pull(name)

    @property
    def cam(self) -> np.ndarray:
        """The current map, float32 in [0, 1] at the layer's resolution: (h, w) for a picture, (l,) for a
        signal, (d, h, w) for a clip or volume (the overlay shows the shown frame's slice)."""
        self._flush()
        view = self._view
        return (view.cam if view.full is None else view.full).copy()

    @property
    def overlay(self) -> np.ndarray:
        """The overlay, (H, W, 3) uint8 at the image's own size (the screen shows it at most DISPLAY_SIDE wide)."""
        self._flush()
        return self._screen.overlay(self.alpha, self.colormap).copy()

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
        return self._c.named()

    @property
    def session(self) -> ExplorerSession:
        """The explorer's model side (caches, counters such as ``model_calls``), for tests and diagnostics."""
        return self._session

    @property
    def preprocessing(self) -> str:
        """What was done to the pixels before the model saw them."""
        return self._session.preprocessing.description

    @property
    def status(self) -> Status:
        """What the status line says, as a value (see :class:`camwidget.explorer.status.Status`)."""
        return self._screen.status

    @property
    def status_text(self) -> str:
        """The status line as plain text (read from :attr:`status`, the value it is drawn from)."""
        return self._screen.status.text()

    @property
    def busy(self) -> bool:
        """True while a map asked for by a control is being computed in the background."""
        return self._controller.busy

    @property
    def _view(self) -> View:
        """The view on screen (drawn: the constructor raises where there is none)."""
        assert self._screen.view is not None
        return self._screen.view

    def add_image(
        self, image: ImageLike, name: str | None = None, value_range: tuple[float, float] | None = None
    ) -> int:
        """Add an image and show it; returns its index. A picture that cannot be used raises, and nothing
        changes."""
        index = self._driver.add_image(image, name, value_range)
        self._flush()
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
        screen, view = self._screen, self._view
        methods_, layers_ = tuple(methods) if methods else None, tuple(layers) if layers else None
        question = Question(screen.image, view.layer.path, view.class_index, self.method, self.score, kind)
        question = dataclasses.replace(question, methods=methods_, layers=layers_, versus=versus, frame=screen.frame)
        return compare.figure_for(self._session, question, self.colormap, self.alpha, width_px=GRID_WIDTH)

    def check(self, randomize: bool = False) -> MapCheck:
        """Is the current map right? Its deletion and insertion curves beside a random map's (areas as numbers:
        ``.deletion.area``, ``.insertion.area``), and with `randomize` the cascading randomisation check of its
        top layers (on a copy). Shows as a figure when it is a cell's last value; ``.figure()`` for matplotlib."""
        self._flush()
        return check_view(self._session, self._screen.image, self._view, randomize)

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
        self._driver.follow_model()
        self._controller.redraw_now(MAP)

    # Read through the class at interpreter exit, when ipywidgets' __del__ calls close() after this module's
    # globals, the builtins and sys.modules may already be gone (nothing can be imported then).
    _finalizing = staticmethod(sys.is_finalizing)

    def close(self) -> None:
        """Free the widgets and the caches, and let the model go with everything traced for it."""
        if self._finalizing():  # the process is ending and frees everything: do nothing, say nothing
            return
        if "_screen" not in vars(self):  # construction failed before the widgets existed
            session = vars(self).get("_session")
            if session is not None:
                session.close()
            return
        self._controller.close()
        self._session.close()
        self._c.close()
        for box in self.children:
            box.close()
        super().close()

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any] | None:
        """The widget's own bundle plus an ``image/png`` still of the view (static_view.view_png), which
        nbconvert, GitHub's viewer and the docs show where the widget cannot load; a live front end shows the
        widget, the bundle's first choice."""
        bundle = super()._repr_mimebundle_(**kwargs)
        still = view_png(self, self.status_text)
        if bundle is not None and still is not None:
            bundle["image/png"] = base64.b64encode(still).decode("ascii")
        return bundle

    # -- drawing: the controller asks, the session computes, the screen shows ----------------------------------

    def _flush(self, now: bool = True) -> Exception | None:
        """Draw what is pending (see Controller.flush); the error, if the view could not be drawn."""
        return self._controller.flush(now)

    def _draw_now(self) -> None:
        """For settings from code: draw now, and raise what stopped the view (the controls are then back on
        the last view drawn, as the status line says)."""
        error = self._flush()
        if error is not None:
            raise error


# The constructor's settings: what to explain (a Request), what the session takes, the controls' first values.
_QUESTION = ("output", "target", "grid", "leading_tokens", "method", "score", "eigen_smooth", "aug_smooth")
_SESSION = ("preprocess", "class_names", "max_side", "value_range", "max_pixels", "warm_up", "note")
_FIRST_VALUES = ("method", "alpha", "colormap", "score", "eigen_smooth", "aug_smooth")


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None
