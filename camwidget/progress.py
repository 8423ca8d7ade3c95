"""Progress of long computations, and stopping one that is no longer wanted.

Work that can be counted (Score-CAM's batches of masked inputs, aug_smooth's copies) calls :func:`step`;
work that cannot (tracing a pass the first time) calls :func:`note`. Both do nothing unless the thread runs
under :func:`tracking`, as the explorer's background worker does; there they report to the explorer's
progress bar and raise :class:`Superseded` when a newer request replaced this one, so that a long Score-CAM
stops at its next batch rather than finish work nobody will see.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass


class Superseded(Exception):
    """A newer request replaced the computation that was running (never shown to a user)."""


@dataclass(frozen=True)
class Task:
    report: Callable[[int, int, str], None]  # (done, total, what); total 0: not countable
    cancelled: Callable[[], bool]


_current: ContextVar[Task | None] = ContextVar("camwidget_task", default=None)
# the stage of a longer job this thread is in: its own steps then only check for cancellation, so the progress
# line keeps naming the job ("randomising layer 2 of 4") rather than the batches inside it
_in_stage: ContextVar[bool] = ContextVar("camwidget_in_stage", default=False)


@contextlib.contextmanager
def tracking(task: Task) -> Iterator[None]:
    """Report progress of the work done in this block to `task`, and stop it when `task` is cancelled."""
    token = _current.set(task)
    try:
        yield
    finally:
        _current.reset(token)


def step(done: int, total: int, what: str) -> None:
    """`done` of `total` units of `what` are done; raises Superseded if the work is no longer wanted."""
    task = _current.get()
    if task is None:
        return
    if task.cancelled():
        raise Superseded
    if not _in_stage.get():
        task.report(done, total, what)


@contextlib.contextmanager
def stage(number: int, total: int, what: str) -> Iterator[None]:
    """Stage `number` (1-based) of `total` of a job, called `what` ("randomising layer", "deletion and insertion
    curves: step"): reported as "`what` `number` of `total`"; the steps of the work inside it are not reported
    (they still stop it when it is superseded)."""
    step(number, total, what)
    token = _in_stage.set(True)
    try:
        yield
    finally:
        _in_stage.reset(token)


def note(what: str) -> None:
    """Work that cannot be counted is starting (e.g. "tracing the pass")."""
    step(0, 0, what)


@contextlib.contextmanager
def bar(total: int, what: str) -> Iterator[None]:
    """Inside, :func:`step` calls drive a tqdm progress bar that appears once the work has run for a second,
    unless the work already reports elsewhere (the explorer's own bar)."""
    if _current.get() is not None:
        yield
        return
    from tqdm.auto import tqdm

    with tqdm(total=total, desc=what, delay=1.0, leave=False) as shown:

        def report(done: int, _total: int, _what: str) -> None:
            if done > shown.n:
                shown.update(done - shown.n)

        token = _current.set(Task(report, lambda: False))
        try:
            yield
            shown.update(total - shown.n)
        finally:
            _current.reset(token)
