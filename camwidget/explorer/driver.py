"""What the explorer's controller drives: the controls read as a request, the session asked, the screen shown.

:class:`Driver` is the explorer's side of :class:`camwidget.explorer.controller.Controller`'s ``Screen``:
it makes the request the controls ask for, computes it through the session (any thread), installs and paints
the result, and on a failure puts every control back on the last view drawn and says why. It also keeps the
controls in step with the model as it is now (layers and classes after a change). No widget is built here
(see :mod:`camwidget.explorer.controls`) and no map is computed here (see the session).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import ipywidgets as widgets
import numpy as np

from camwidget.errors import CAMError
from camwidget.explorer.controller import BLEND, COLOURS, MAP
from camwidget.explorer.controls import Controls
from camwidget.explorer.screen import Screen
from camwidget.explorer.search import ClassSearch
from camwidget.explorer.view_request import MODES, ViewRequest, ViewResult, compute_view
from camwidget.inputs.images import ImageLike

if TYPE_CHECKING:
    from camwidget.explorer.controller import Controller
    from camwidget.explorer.session import ExplorerSession


class Driver:
    """The explorer's state between views, and the steps the controller calls.

    Attributes:
        follow_top: the class shown follows each picture's top class (no class was chosen).
        good: the view controls' values for the last view drawn (restored after a failure).
        notice: a warning said once in the next status line.
        randomize: the Check view's button asked for the randomisation check (run once).
        controller: the controller that calls this (set once it is made).
    """

    def __init__(
        self, session: ExplorerSession, controls: Controls, screen: Screen, search: ClassSearch, follow_top: bool
    ) -> None:
        self.session, self.c, self.screen, self.search = session, controls, screen, search
        self.follow_top = follow_top
        self.good: dict[str, Any] | None = None
        self.notice: str | None = None
        self.randomize = False
        self.controller: Controller | None = None
        self.busy = screen.busy
        self.progress = screen.progress

    # -- wiring: a control's change schedules the redraw it needs ------------------------------------------

    def wire(self) -> None:
        """Observe every control: a change marks what it makes stale (the map, the colours, the blend) and asks
        the controller for a redraw; a value set from code (``controls.quietly()``) is not a user's change."""
        c, schedule = self.c, self._schedule
        watch: list[tuple[widgets.Widget, Callable[[dict], None]]] = [
            (c.image, schedule(MAP)),  # the class list follows when the new image's view lands
            (c.layer, self._on_layer),
            (c.scrub, lambda change: setattr(c.layer, "value", change["new"])),  # the layer's observer draws
            (c.versus, schedule(MAP)),
            (c.frame, schedule(MAP)),
            (c.method, schedule(MAP)),
            (c.class_, self._on_class),
            (c.class_search, self.search.on_typing),
            (c.alpha, schedule(BLEND)),
            (c.colormap, schedule(COLOURS)),
            (c.mode, self._on_mode),
            (c.score, schedule(MAP)),
            (c.eigen, schedule(MAP)),
            (c.aug, schedule(MAP)),
            (c.upload, self.on_upload),
        ]
        for control, handler in watch:
            control.observe(self._unless_syncing(handler), names="value")
        c.class_search.on_msg(self.search.on_submit)
        c.randomize.on_click(self._on_randomize)

    def _schedule(self, level: int) -> Callable[[dict], None]:
        return lambda _: self._ask(level)

    def _ask(self, level: int) -> None:
        assert self.controller is not None
        self.controller.schedule(level)

    def _unless_syncing(self, handler: Callable[[dict], None]) -> Callable[[dict], None]:
        def run(change: dict) -> None:
            if not self.c.syncing:
                handler(change)

        return run

    def _on_randomize(self, _: widgets.Button) -> None:
        self.randomize = True
        self._ask(MAP)

    def _on_layer(self, _: dict) -> None:
        self.c.sync_scrub()
        self._ask(MAP)

    def _on_class(self, _: dict) -> None:
        self.follow_top = False
        self._ask(MAP)

    def _on_mode(self, change: dict) -> None:
        self.c.show_panels_for(change["new"])
        self._ask(MAP if MODES[change["new"]] else COLOURS)  # a grid needs its maps

    # -- pictures and the menus that list them ----------------------------------------------------------------

    def add_image(self, image: ImageLike, name: str | None, value_range: tuple[float, float] | None = None) -> int:
        """Add and select an image; its view is drawn as any control change is (in the background if so)."""
        index = self.session.add_image(image, name or f"image {len(self.session.pixels)}", value_range)
        self.refresh_image_options(int(self.c.image.value))
        self.c.image.value = index
        return index

    def on_upload(self, change: dict) -> None:
        """Pictures uploaded in the browser are added and the last shown; one that cannot be used is said in
        the status line, with the kind of error, and nothing is lost."""
        for item in change["new"] or ():
            name = item.get("name", "upload")
            try:
                self.add_image(bytes(item["content"]), name)
            except Exception as exc:  # noqa: BLE001 - whatever it is, the user must read it, not lose it
                kind = "" if isinstance(exc, (CAMError, FileNotFoundError)) else f"{type(exc).__name__}: "
                self.screen.say(error=f"could not use {name!r}: {kind}{exc}")
            finally:
                with self.c.quietly():
                    self.c.upload.value = ()

    def refresh_image_options(self, keep: int) -> None:
        """The image menu's entries, each with its size as the user knows it, `keep` selected."""
        session = self.session
        self.c.set_images(session.names, [session.describe(i) for i in range(len(session.pixels))], keep)

    def refresh_class_options(self, chosen: int | None, probs: np.ndarray | None = None) -> None:
        """Classes sorted by the model's score for the current image, the chosen (or top) one selected."""
        if probs is None:
            probs = self.session.probabilities(int(self.c.image.value), self.c.layer.value)
        self.c.set_classes(self.session.class_names, probs, chosen)

    # -- the model as it is now ----------------------------------------------------------------------------

    def catch_up(self) -> bool | None:
        """If the model changed since the view was drawn, bring the controls up to it: True if it changed,
        False if not, None if it can no longer be shown (said in the status line)."""
        if self.screen.view is None or not self.session.sync():
            return False
        try:
            self.follow_model()
        except (CAMError, ValueError, TypeError) as exc:
            self.screen.say(error=f"the model changed, and it cannot be shown any more: {exc}")
            return None
        assert self.controller is not None
        self.controller.mark(MAP)
        return True

    def follow_model(self) -> None:
        """After the model changed: its layers and classes as they are now in the dropdowns; a layer or class
        that no longer exists gives way to the default layer or the top class, as the status line says."""
        shown_layer, shown_class = self.c.layer.value, int(self.c.class_.value)
        layout = self.session.layout(int(self.c.image.value))
        layer = shown_layer if shown_layer in layout.spatial_paths() else layout.default_path()
        if layer != shown_layer:
            self.notice = f"layer {shown_layer} is no longer in the model, so {layer} is shown"
        self.c.set_layers(layout, layer)
        keep = not self.follow_top and shown_class < self.session.n_classes
        if not self.follow_top and not keep:
            self.notice = f"class {shown_class} is no longer one of the model's classes, so its top class is shown"
        self.follow_top = self.follow_top or not keep
        self.search.refresh()
        self.refresh_class_options(shown_class if keep else None)

    def restore_last_view(self) -> None:
        """Put every control that chooses the view back where it was for the last view drawn."""
        good, controls = self.good, self.c.named()
        if good is None:
            return
        image_changed = controls["image"].value != good["image"]
        with self.c.quietly():
            for name in ("image", "layer", "method", "score", "eigen-smooth", "aug-smooth", "mode", "versus", "frame"):
                controls[name].value = good[name]
        if image_changed:
            view = self.screen.view
            self.refresh_class_options(good["class"], view.probabilities if view is not None else None)
        else:
            with self.c.quietly():
                controls["class"].value = good["class"]
        self.follow_top = good["follow_top"]
        self.c.sync_scrub()
        self.c.show_panels_for(self.c.mode.value)

    def request(self) -> ViewRequest:
        """The view the controls ask for now (class None: the image's top class)."""
        c, versus = self.c, self.c.versus.value
        return ViewRequest(
            int(c.image.value),
            c.layer.value,
            None if self.follow_top else int(c.class_.value),
            c.method.value,
            c.score.value,
            bool(c.eigen.value),
            bool(c.aug.value),
            c.mode.value,
            None if versus is None or versus < 0 else int(versus),
            int(c.frame.value),
            self.randomize and MODES[c.mode.value] == "check",
        )

    def compute(self, request: ViewRequest) -> ViewResult:
        """The map for `request` (any thread: the session computes one view at a time)."""
        return compute_view(self.session, request)

    def draw(self, level: int) -> None:
        """Redraw what `level` makes stale, computing here (raises what stops the view)."""
        if level >= MAP or self.screen.view is None:
            request = self.request()
            self.install(request, self.compute(request))
            level = MAP
        self.paint(level)

    def show(self, request: ViewRequest, result: ViewResult) -> None:
        """A view computed in the background for `request` goes on screen."""
        self.install(request, result)
        self.paint(MAP)

    def install(self, request: ViewRequest, result: ViewResult) -> None:
        """Make `result` the one on screen, with the class list of its image."""
        new_image = self.screen.install(request, result)
        if request.randomize:
            self.randomize = False  # the button runs it once, for the map it was pressed on
        if new_image or request.class_index is None:
            self.refresh_class_options(result.view.class_index, result.view.probabilities)

    def paint(self, level: int) -> None:
        """Colour and blend the view on screen; level MAP also records it as the last good view."""
        self.screen.paint(level, self.c.alpha.value, self.c.colormap.value)
        if level < MAP and self.screen.error_shown:  # this change worked: the error line of an earlier one goes
            self.say()
        if level >= MAP:
            # what the view was computed for, not what the controls say now: they may have moved on already
            request, view = self.screen.request, self.screen.view
            assert request is not None and view is not None
            self.good = request.controls(view.class_index)
            self.say()
            if not request.aug_smooth:  # while this view is looked at, make every other layer ready
                self.session.warm_up(request.image, view.class_index, request.score)

    def failed(self, exc: BaseException, level: int) -> None:
        if level >= MAP:
            self.restore_last_view()
        known = isinstance(exc, (CAMError, ValueError, TypeError))
        self.say(error=str(exc) if known else f"{type(exc).__name__}: {exc}")

    def say(self, error: str | None = None) -> None:
        """The status line: what is on screen, the notice once, and `error` (kept until a change works)."""
        self.screen.say(error=error, notice=self.notice)
        self.notice = None
