"""camwidget.explorer.warm_up: one background job at a time, the newest wanted, after a short delay."""

from __future__ import annotations

import threading

from camwidget.explorer import warm_up
from camwidget.explorer.warm_up import WarmUp


def test_only_the_newest_wanted_job_runs(monkeypatch):
    monkeypatch.setattr(warm_up, "DELAY", 0.2)
    ran: list[str] = []
    worker = WarmUp(enabled=True)
    try:
        worker.start("a", lambda: ran.append("a"))
        worker.start("b", lambda: ran.append("b"))  # asked for before "a" started: "a" is no longer wanted
        worker.wait_for_all()
        assert ran == ["b"]
    finally:
        worker.close()


def test_a_view_that_needs_the_job_starts_it_at_once_and_waits(monkeypatch):
    monkeypatch.setattr(warm_up, "DELAY", 30.0)  # never reached: waiting for it hurries it
    done = threading.Event()
    worker = WarmUp(enabled=True)
    try:
        worker.start("k", done.set)
        assert worker.wait_for("k") and done.is_set()
        assert not worker.wait_for("k")  # finished: nothing under way
    finally:
        worker.close()


def test_errors_are_dropped_and_disabled_or_closed_runs_nothing():
    ran: list[int] = []
    worker = WarmUp(enabled=True)
    worker.start("boom", lambda: 1 / 0)  # a head start only: its error is the view's to report
    worker.wait_for_all()
    worker.enabled = False
    worker.start("off", lambda: ran.append(1))
    worker.enabled = True
    worker.close()
    worker.start("closed", lambda: ran.append(2))
    assert ran == []
