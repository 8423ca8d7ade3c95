"""The explorer's background worker (camwidget.explorer.worker.LatestOnly): only the newest request is shown."""

from __future__ import annotations

import threading

import pytest

from camwidget import progress
from camwidget.explorer.worker import LatestOnly


class Delivered:
    """What the worker hands back: (number, result, error) per request delivered, and its progress reports."""

    def __init__(self) -> None:
        self.done: list[tuple[int, object, BaseException | None]] = []
        self.reports: list[tuple[int, int, int, str]] = []

    def __call__(self, number: int, result: object, error: BaseException | None) -> None:
        self.done.append((number, result, error))

    def report(self, number: int, done: int, total: int, what: str) -> None:
        self.reports.append((number, done, total, what))


@pytest.fixture
def worker():
    w = LatestOnly("test-worker")
    yield w
    w.close()


def test_a_request_is_computed_in_the_background_and_delivered_with_its_number(worker):
    got = Delivered()
    number = worker.submit(lambda: threading.current_thread().name, got, got.report)
    assert worker.wait(10)
    assert got.done == [(number, "test-worker", None)] and not worker.busy


def test_an_error_is_delivered_not_raised(worker):
    got = Delivered()

    def fails():
        raise ValueError("no map here")

    number = worker.submit(fails, got, got.report)
    assert worker.wait(10)
    [(delivered, result, error)] = got.done
    assert delivered == number and result is None and isinstance(error, ValueError) and str(error) == "no map here"


def test_newer_requests_supersede_the_waiting_and_the_running_one(worker):
    got, gate, computed = Delivered(), threading.Event(), []

    def work(n: int):
        def run():
            computed.append(n)
            if n == 1:
                assert gate.wait(10)
            return f"map {n}"

        return run

    worker.submit(work(1), got, got.report)
    while computed != [1]:  # 1 runs, held at its gate
        threading.Event().wait(0.005)
    worker.submit(work(2), got, got.report)  # waits behind 1 ...
    third = worker.submit(work(3), got, got.report)  # ... and is dropped for 3
    assert worker.busy and not worker.is_current(third - 1)
    gate.set()
    assert worker.wait(10)
    assert computed == [1, 3] and got.done == [(third, "map 3", None)]  # 1 ended stale: never delivered


def test_progress_is_reported_and_a_superseded_request_stops_at_its_next_step(worker):
    got, started, gate = Delivered(), threading.Event(), threading.Event()
    steps = []

    def long():
        for i in range(100):
            progress.step(i, 100, "channels")
            steps.append(i)
            started.set()
            gate.wait(10)
        return "done"

    worker.submit(long, got, got.report)
    assert started.wait(10)
    worker.supersede()  # a cell computes the view itself
    gate.set()
    assert worker.wait(10)
    assert got.done == [] and len(steps) < 100  # stopped early, and nothing delivered
    assert got.reports and got.reports[0][1:] == (0, 100, "channels")


def test_a_closed_worker_takes_no_more_requests():
    worker = LatestOnly()
    worker.close()
    with pytest.raises(RuntimeError, match="closed"):
        worker.submit(lambda: None, Delivered(), Delivered().report)
