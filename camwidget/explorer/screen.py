"""What the explorer shows: the last computed view, what it was computed for, drawn into the controls; and the
status and progress lines that say so.

The screen never computes a map: a :class:`~camwidget.explorer.view_request.ViewResult` is installed, then
painted at a level (the blend only, the colours, or a new map); the status line is drawn from a
:class:`~camwidget.explorer.status.Status` value.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from camwidget import render
from camwidget.explorer import compare
from camwidget.explorer.canvas import STALE
from camwidget.explorer.compare import Cell
from camwidget.explorer.controller import COLOURS
from camwidget.explorer.controls import COLORBAR_WIDTH, GRID_WIDTH, Controls, show, size
from camwidget.explorer.status import Status, computing_html, status_html, status_of
from camwidget.explorer.view_request import MODES, ViewRequest, ViewResult
from camwidget.methods import METHODS
from camwidget.notes import titled

if TYPE_CHECKING:
    from camwidget.explorer.check import MapCheck
    from camwidget.explorer.session import ExplorerSession, View


class Screen:
    """The view on screen and the lines under it.

    Attributes:
        view: the map shown (None before the first).
        request: what it was computed for (the controls may have moved on already).
        image, frame: the picture (and a clip's frame) it shows.
        cells: a Compare view's grid; check: a Check view's curves.
        status: what the status line says.
    """

    def __init__(self, controls: Controls, session: ExplorerSession) -> None:
        self.controls = controls
        self.session = session
        self.view: View | None = None
        self.request: ViewRequest | None = None
        self.image = 0
        self.frame = 0
        self.cells: list[Cell] | None = None
        self.check: MapCheck | None = None
        self.status = Status()
        self.error_shown = False  # the status line shows an error (the next change that works clears it)
        self._upsampled: np.ndarray | None = None  # the map at the displayed picture's size
        self._heat: np.ndarray | None = None  # it coloured
        self._overlay: np.ndarray | None = None  # the full-size overlay, made when asked for

    def install(self, request: ViewRequest, result: ViewResult) -> bool:
        """Make `result` (computed for `request`) the one on screen; True when it shows another picture or
        frame than before."""
        view, c = result.view, self.controls
        new_image = request.image != self.image or self.view is None or request.frame != self.frame
        self.view, self.image, self.cells, self.check = view, request.image, result.cells, result.check
        self.request, self.frame = request, request.frame
        pixels = self.session.display_pixels(request.image, request.frame)
        self._upsampled = render.upsample(view.cam, pixels.shape[0], pixels.shape[1])
        self._heat = None
        if new_image and self.session.kind == "volume":
            with c.quietly():
                c.frame.max = self.session.frames(request.image) - 1
        if new_image:
            show(c.plain, pixels)
            c.canvas.show_picture(pixels)
        c.canvas.show_map(self._upsampled)
        return new_image

    def paint(self, level: int, alpha: float, colormap: str) -> None:
        """Colour (level COLOURS or MAP) and blend the view on screen, and draw the panels its mode shows."""
        assert self.view is not None and self._upsampled is not None
        c, view = self.controls, self.view
        pixels = self.session.display_pixels(self.image, self.frame)
        mode = c.mode.value
        if level >= COLOURS or self._heat is None:
            self._heat = render.colorize(self._upsampled, colormap)
        self._overlay = None
        if MODES[mode] == "check" and self.check is not None:
            c.grid.value = self.check.figure_png(colormap, alpha, width_px=GRID_WIDTH)
        elif MODES[mode] and self.cells is not None:
            title = titled(f"{self.session.names[self.image]}: {mode.lower()}", self.session.model_note)
            figure = compare.figure(pixels, self.cells, colormap, alpha, title, width_px=GRID_WIDTH)
            c.grid.value = compare.figure_png(figure)
        show(c.overlay, render.blend(pixels, self._heat, alpha))
        with c.canvas.hold_sync():  # the browser has these already (linked); the saved state must too
            c.canvas.alpha, c.canvas.colormap_index = alpha, c.colormap.index
        if mode == "Side by side" and level >= COLOURS:
            title = f"{self.session.class_names[view.class_index]}\n@ {view.layer.path}"
            c.heat.value = render.heatmap_figure_png(view.cam, colormap, title)
            c.size_side_by_side(pixels.shape[:2])
        if mode == "Overlay" and (level >= COLOURS or not c.colorbar.value):
            c.size_overlay(pixels.shape[:2])
            height = int(c.overlay.layout.height[:-2])
            c.colorbar.value = render.colorbar_png(colormap, height)
            size(c.colorbar, height, COLORBAR_WIDTH)

    def overlay(self, alpha: float, colormap: str) -> np.ndarray:
        """The overlay at the picture's own size (H, W, 3) uint8, made once per paint."""
        assert self.view is not None
        if self._overlay is None:
            picture = self.session.picture(self.image, self.frame)
            self._overlay = render.overlay(picture, self.view.cam, alpha, colormap)
        return self._overlay

    # -- the status line and the progress line under it ----------------------------------------------------

    def say(self, error: str | None = None, notice: str | None = None) -> None:
        """Say what is on screen, `notice` once, and `error` (kept until a change works) in the status line."""
        self.error_shown = error is not None
        status = status_of(self.session, self.view, self.image, self.frame, notice=notice, error=error)
        self.status = status.with_computing(self.status.computing)
        self.controls.status.value = status_html(self.status)

    def busy(self, request: ViewRequest | None, *, visible: bool = False) -> None:
        """The worker computes `request` (None: nothing; the progress line hidden); `visible`: show it now, and
        dim the view on screen, which is the previous one until the new one lands."""
        c = self.controls
        if request is None:
            self.status = self.status.with_computing(None)
            c.busy.layout.display = "none"
            self._dim(False)
            return
        if visible:
            c.busy.layout.display = "flex"
            self._dim(True)
            return
        self.status = self.status.with_computing(f"{METHODS[request.method].label} at {request.layer}")
        c.progress.value, c.progress.max = 0, 1
        c.busy_text.value = computing_html(f"{request.doing()}…{self._until()}")

    def _until(self) -> str:
        """What stays on screen meanwhile, said: the progress line names the previous view."""
        view = self.view
        return "" if view is None else f" (showing {METHODS[view.method].label} at {view.layer.path} until it is ready)"

    def _dim(self, stale: bool) -> None:
        """Mark the panels as showing the previous view (PAGE_STYLE draws them faded), or not."""
        c = self.controls
        for panel in (c.overlay, c.canvas, c.grid, c.heat, c.plain):
            (panel.add_class if stale else panel.remove_class)(STALE)

    def progress(self, request: ViewRequest, done: int, total: int, what: str, *, visible: bool) -> None:
        """The worker's progress on `request`: `done` of `total` steps of `what` (total 0: no count)."""
        c = self.controls
        label = f"{request.doing()}: {what}"
        if total:
            with c.progress.hold_sync():
                c.progress.max, c.progress.value = total, done
            label += f" {done} of {total}"
        c.progress.layout.visibility = "visible" if total else "hidden"
        c.busy_text.value = computing_html(label + "…" + self._until())
        if visible:
            c.busy.layout.display = "flex"
