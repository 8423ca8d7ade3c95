"""The explorer's request machine: what a control change makes stale, when it is drawn, and by whom.

A change marks how much of the view is stale (:data:`BLEND` < :data:`COLOURS` < :data:`MAP`) and asks the
running event loop for one redraw, so a burst of slider events ends in a single redraw of the last value
(coalescing). With no running loop (a script, a test) the redraw happens at once. In background mode a map
goes to a :class:`~camwidget.explorer.worker.LatestOnly` worker and lands later, unless a newer request
supersedes it first; opacity and colours are redrawn at once meanwhile. An error keeps the last good view:
the screen is told and restores its controls.

The controller knows nothing of widgets: it drives a :class:`Screen` (the widget), so it is tested with a fake.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Iterator
from typing import Any, Protocol

from camwidget.explorer.worker import LatestOnly

# How much of the view a change makes stale, least to most.
BLEND, COLOURS, MAP = 1, 2, 3
BUSY_AFTER = 0.3  # s: a computation longer than this shows a progress line

#: Set only by tests: called with the controller at each full redraw pass (to count event coalescing).
redraw_hook: Callable[[Controller], None] | None = None

_SHOWN_ERRORS = (ValueError, TypeError)  # CAMError is a ValueError: what a view that cannot be shown raises


class Screen(Protocol):
    """What the controller asks of the view it drives (the widget)."""

    def catch_up(self) -> bool | None:
        """Bring the controls up to a model that changed: True if it did, False if not, None if it cannot be
        shown any more (the screen said so)."""

    def request(self) -> Any:
        """The view the controls ask for now."""

    def compute(self, request: Any) -> Any:
        """The result for `request` (any thread)."""

    def draw(self, level: int) -> None:
        """Redraw what `level` makes stale, computing the map here when it is MAP (raises what stops it)."""

    def show(self, request: Any, result: Any) -> None:
        """Put `result`, computed for `request` in the background, on screen (raises what stops it)."""

    def failed(self, error: BaseException, level: int) -> None:
        """Say `error`; at MAP, put the controls back on the last view drawn."""

    def busy(self, request: Any | None, *, visible: bool = False) -> None:
        """The worker computes `request` (None: nothing; visible: show the progress line now)."""

    def progress(self, request: Any, done: int, total: int, what: str, *, visible: bool) -> None:
        """The worker's progress on `request`."""


class Controller:
    """Coalesces control changes into redraws and runs maps in the background (see the module's note).

    Args:
        screen: the view to draw on.
        loop: the event loop whose thread owns the widgets, None to compute every map at once.
        worker: the background thread (a fresh :class:`LatestOnly` by default).
    """

    def __init__(
        self, screen: Screen, loop: asyncio.AbstractEventLoop | None, worker: LatestOnly | None = None
    ) -> None:
        self.screen = screen
        self.loop = loop
        self.worker = worker or LatestOnly()
        self.pending = 0  # the most of the view made stale since the last redraw
        self.scheduled = False  # a redraw is asked of the event loop
        self.deferring = False  # a setter is changing a control: it draws itself, once
        self.in_flight: int | None = None  # the worker's request that the screen waits for
        self._in_flight_since = 0.0
        self._busy_request: Any = None

    @property
    def background(self) -> bool:
        """True when maps asked for by control changes are computed in the worker."""
        return self.loop is not None

    @property
    def busy(self) -> bool:
        """True while a map asked for by a control is being computed in the background, or a redraw waits."""
        return self.in_flight is not None or self.scheduled

    def mark(self, level: int) -> None:
        """Note that `level` of the view is stale, without drawing."""
        self.pending = max(self.pending, level)

    def schedule(self, level: int) -> None:
        """A control changed: `level` of the view is stale. Drawn once the event loop is free (at once with
        no running loop; not at all while a setter draws itself)."""
        self.mark(level)
        if self.scheduled or self.deferring:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self.flush()
            return
        self.scheduled = True
        loop.call_soon(self.flush, False)

    @contextlib.contextmanager
    def deferred(self) -> Iterator[None]:
        """Within: control changes only mark the view stale; the caller flushes after."""
        self.deferring = True
        try:
            yield
        finally:
            self.deferring = False

    def flush(self, now: bool = True) -> Exception | None:
        """Draw what is pending; the error, if the view could not be drawn (the screen says it too).

        Args:
            now: True (a cell, a setter, a property): the map is computed here, superseding any request the
                worker has. False (a control change, from the event loop): in background mode the map goes to
                the worker and lands later; opacity and colour changes are drawn at once either way.

        Returns:
            The ValueError or TypeError (CAMError included) that stopped the view, else None.
        """
        self.scheduled = False
        if self.in_flight is not None and not now and self.pending < MAP:
            # opacity or colours while the worker computes: no model check (it would queue behind the worker's
            # model work); the view on screen is re-blended, and the worker's view is checked as it lands
            level, self.pending = self.pending, 0
            return self.redraw_now(level) if level else None
        caught_up = self.screen.catch_up()
        if caught_up:
            self.mark(MAP)
        level, self.pending = self.pending, 0
        if caught_up is None:
            return None
        if now and self.in_flight is not None:
            level = MAP  # what the worker was asked for is computed here instead
        if level >= MAP and self.background and not now:
            self.submit(self.screen.request())
            return None
        if level >= MAP:
            self.cancel_in_flight()
        return self.redraw_now(level) if level else None

    def redraw_now(self, level: int) -> Exception | None:
        """Redraw what `level` makes stale, here; an error is shown (the last view stays) and returned."""
        if redraw_hook is not None:
            redraw_hook(self)
        try:
            self.screen.draw(level)
        except _SHOWN_ERRORS as exc:
            self.screen.failed(exc, level)
            return exc
        return None

    def submit(self, request: Any) -> None:
        """Compute `request` in the worker; the screen shows it when it lands, if nothing newer was asked."""
        self.in_flight = self.worker.submit(lambda: self.screen.compute(request), self._delivered, self._reported)
        self._in_flight_since = time.perf_counter()
        self._busy_request = request
        self.screen.busy(request)
        self.loop.call_later(BUSY_AFTER, self._reveal_busy, self.in_flight)

    def cancel_in_flight(self) -> None:
        """Forget the worker's request (the view is computed here instead)."""
        if self.in_flight is not None:
            self.worker.supersede()
            self.in_flight = None
            self.screen.busy(None)

    def close(self) -> None:
        """Stop the worker."""
        self.cancel_in_flight()
        self.worker.close()

    def _delivered(self, number: int, result: Any, error: BaseException | None) -> None:
        """In the worker thread: hand the result to the event loop's thread, where widgets are changed."""
        if not self.loop.is_closed():
            self.loop.call_soon_threadsafe(self.land, number, result, error)

    def _reported(self, number: int, done: int, total: int, what: str) -> None:
        if not self.loop.is_closed():
            self.loop.call_soon_threadsafe(self._progress, number, done, total, what)

    def land(self, number: int, result: Any, error: BaseException | None) -> None:
        """A worker's result arrives: shown only if it is still what the controls ask for, and only if the
        model did not change while it was computed (else it is computed again)."""
        if number != self.in_flight:
            return  # superseded: a newer request, or a cell computed the view itself
        self.in_flight = None
        self.screen.busy(None)
        if redraw_hook is not None:
            redraw_hook(self)
        changed = self.screen.catch_up()
        if changed is None:
            return  # the model can no longer be shown: the screen says so
        if changed:
            self.pending = 0
            self.submit(self.screen.request())  # from the model as it is now
            return
        if error is not None:
            self.screen.failed(error, MAP)
            return
        try:
            self.screen.show(self._busy_request, result)
        except _SHOWN_ERRORS as exc:
            self.screen.failed(exc, MAP)

    def _reveal_busy(self, number: int) -> None:
        if number == self.in_flight:
            self.screen.busy(self._busy_request, visible=True)

    def _progress(self, number: int, done: int, total: int, what: str) -> None:
        if number != self.in_flight:
            return
        visible = time.perf_counter() - self._in_flight_since >= BUSY_AFTER
        self.screen.progress(self._busy_request, done, total, what, visible=visible)
