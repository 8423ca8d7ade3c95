"""One background thread that runs the newest request only.

The explorer hands every view that needs the model to :class:`LatestOnly`, so the kernel stays free for
the controls (opacity and colormap still apply at once) while a long map is computed. A request made
while another runs supersedes it: the one waiting is dropped, the one running is told to stop at its next
progress step (:mod:`camwidget.progress`), and whatever result it still delivers is marked stale, so an
older map can never be shown after a newer one was asked for.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from camwidget.progress import Superseded, Task, tracking

Done = Callable[[int, Any, BaseException | None], None]  # (request number, result, error)
Report = Callable[[int, int, int, str], None]  # (request number, done, total, what)


class LatestOnly:
    def __init__(self, name: str = "camwidget-view") -> None:
        self._name = name
        self._cond = threading.Condition()
        self._latest = 0  # the number of the newest request; results of any other are stale
        self._waiting: tuple[int, Callable[[], Any], Done, Report] | None = None
        self._running: int | None = None
        self._thread: threading.Thread | None = None
        self._closed = False

    def submit(self, work: Callable[[], Any], done: Done, report: Report) -> int:
        """Run `work` in the background; `done(number, result, error)` is called in the worker thread when
        it ends, unless a newer request was made meanwhile. Returns the request's number."""
        with self._cond:
            if self._closed:
                raise RuntimeError("this worker was closed")
            self._latest += 1
            self._waiting = (self._latest, work, done, report)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
                self._thread.start()
            self._cond.notify_all()
            return self._latest

    def supersede(self) -> None:
        """Make every request so far stale (the caller computes the view itself)."""
        with self._cond:
            self._latest += 1
            self._waiting = None
            self._cond.notify_all()

    def is_current(self, number: int) -> bool:
        return number == self._latest

    @property
    def busy(self) -> bool:
        with self._cond:
            return self._waiting is not None or self._running is not None

    def wait(self, timeout: float | None = None) -> bool:
        """Block until nothing is waiting or running; False on timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: self._waiting is None and self._running is None, timeout)

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._latest += 1
            self._waiting = None
            self._cond.notify_all()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=30)

    def _run(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._waiting is not None or self._closed)
                if self._closed:
                    return
                number, work, done, report = self._waiting
                self._waiting, self._running = None, number
            task = Task(lambda d, t, w, n=number: report(n, d, t, w), lambda n=number: n != self._latest)
            result, error = None, None
            try:
                with tracking(task):
                    result = work()
            except Superseded:
                error = Superseded()
            except BaseException as exc:  # noqa: BLE001 - delivered to the caller, which shows it
                error = exc
            try:
                if self.is_current(number) and not isinstance(error, Superseded):
                    done(number, result, error)
            finally:
                with self._cond:
                    self._running = None
                    self._cond.notify_all()
