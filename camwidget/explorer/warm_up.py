"""The explorer's background head start: one worker thread that runs the newest wanted job after a short delay.

While a view is looked at, the session asks for the pass that reaches every layer of its image and class, so
that the first switch to another layer finds it done. Only the newest request runs (an older one that has not
started is dropped when it starts); a view that needs the job meanwhile waits for it rather than run it twice.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from concurrent.futures import Future, ThreadPoolExecutor

DELAY = 0.3  # s a view is looked at before its warm-up starts


class WarmUp:
    """At most one background job at a time, the newest wanted one, started after :data:`DELAY`."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self._worker: ThreadPoolExecutor | None = None
        self._running: dict[Hashable, Future[None]] = {}
        self._hurry = threading.Event()  # set: someone waits for the job, so it starts without its delay
        self._wanted: Hashable | None = None
        self.closed = False

    def want(self, key: Hashable) -> None:
        """`key` is what the screen shows now: a job for an older key that has not started will not."""
        self._wanted = key

    def start(self, key: Hashable, job: Callable[[], None]) -> None:
        """Run `job()` in the background after the delay, unless `key` is no longer the one wanted by then.

        Args:
            key: what the job is for (an image, a class, a score).
            job: the work; its errors are dropped (a head start only: the view that needs it computes and
                reports them itself).
        """
        if not self.enabled or self.closed:
            return
        self._wanted = key
        if self._worker is None:
            self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="camwidget-warm-up")
        self._hurry.clear()
        self._running[key] = self._worker.submit(self._run, key, job)

    def _run(self, key: Hashable, job: Callable[[], None]) -> None:
        try:
            # Start once the view has been looked at for a moment (or at once when a view needs this pass):
            # a cell that goes on to edit the model (pop, add) is done by then, and the job checks the model
            # as it is then. A pass traced while a Sequential is being edited could build it under the edit.
            self._hurry.wait(DELAY)
            if self._wanted == key and not self.closed:
                job()
        except Exception:  # noqa: BLE001, S110 - only a head start: the view that needs it computes and reports
            pass
        finally:
            self._running.pop(key, None)

    def wait_for(self, key: Hashable) -> bool:
        """Wait for a job for `key` that is under way; True if there was one."""
        future = self._running.get(key)
        if future is None:
            return False
        self._hurry.set()
        _settle(future)
        return True

    def wait_for_all(self) -> None:
        """Block until every job is done (tests and benchmarks use it)."""
        self._hurry.set()
        for future in list(self._running.values()):
            _settle(future)

    def close(self) -> None:
        """End the worker: a job waiting out its delay ends now, one running finishes first."""
        self.closed = True
        self._hurry.set()
        if self._worker is not None:
            self._worker.shutdown(wait=True, cancel_futures=True)
            self._worker = None


def _settle(future: Future[None]) -> None:
    try:
        future.result()
    except Exception:  # noqa: BLE001, S110 - the job's own errors are dropped (see WarmUp.start)
        pass
