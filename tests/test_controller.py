"""The explorer's request machine (camwidget.explorer.controller), driven with a fake screen: no widgets."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from camwidget.errors import CAMError
from camwidget.explorer import controller
from camwidget.explorer.controller import BLEND, MAP, Controller


class FakeScreen:
    """A view whose controls are one number; a negative number cannot be shown."""

    def __init__(self) -> None:
        self.value = 0  # what the controls ask for
        self.shown: tuple[int, str] | None = None  # (request, map) on screen
        self.shows: list[int] = []  # every request put on screen, in order
        self.computed: list[int] = []
        self.errors: list[str] = []
        self.blends = 0
        self.catch_ups = 0
        self.busy_with: list[int | None] = []
        self.gates: dict[int, threading.Event] = {}  # a request's computation waits for its gate

    def catch_up(self) -> bool:
        self.catch_ups += 1
        return False

    def request(self) -> int:
        return self.value

    def compute(self, request: int) -> str:
        self.computed.append(request)
        if request in self.gates:
            assert self.gates[request].wait(10)
        if request < 0:
            raise CAMError(f"cannot show {request}")
        return f"map {request}"

    def draw(self, level: int) -> None:
        if level >= MAP or self.shown is None:
            request = self.request()
            self.show(request, self.compute(request))
        else:
            self.blends += 1

    def show(self, request: int, result: str) -> None:
        self.shown = (request, result)
        self.shows.append(request)

    def failed(self, error: BaseException, level: int) -> None:
        self.errors.append(str(error))
        if level >= MAP and self.shown is not None:
            self.value = self.shown[0]  # the controls back on the last view drawn

    def busy(self, request: int | None, *, visible: bool = False) -> None:
        if not visible:
            self.busy_with.append(request)

    def progress(self, request: int, done: int, total: int, what: str, *, visible: bool) -> None:
        pass


async def until(condition, timeout: float = 10.0) -> None:
    deadline = time.perf_counter() + timeout
    while not condition():
        assert time.perf_counter() < deadline, "timed out"
        await asyncio.sleep(0.005)


def test_two_quick_changes_make_one_computation_of_the_last():
    screen = FakeScreen()
    ctl = Controller(screen, loop=None)

    async def changes():
        screen.value = 1
        ctl.schedule(MAP)
        screen.value = 2
        ctl.schedule(MAP)
        assert screen.computed == [] and ctl.busy  # nothing computed while events keep coming
        await asyncio.sleep(0)
        return list(screen.computed)

    assert asyncio.run(changes()) == [2]
    assert screen.shown == (2, "map 2") and not ctl.busy


def test_no_running_loop_draws_at_once_and_a_setter_draws_once():
    screen = FakeScreen()
    ctl = Controller(screen, loop=None)
    screen.value = 3
    ctl.schedule(MAP)
    assert screen.computed == [3]
    with ctl.deferred():  # a setter: the control's observer only marks the view stale
        screen.value = 4
        ctl.schedule(MAP)
        ctl.schedule(BLEND)
    assert screen.computed == [3]
    assert ctl.flush() is None and screen.computed == [3, 4]


def test_redraw_hook_counts_redraws_only_when_a_test_sets_it(monkeypatch):
    screen = FakeScreen()
    ctl = Controller(screen, loop=None)
    counted = []
    monkeypatch.setattr(controller, "redraw_hook", counted.append)
    ctl.schedule(MAP)
    ctl.schedule(BLEND)
    assert counted == [ctl, ctl] and screen.blends == 1


def drive(screen, scenario) -> None:
    """Run `scenario(ctl)` in an event loop, as a notebook's kernel runs the explorer, with a controller of
    `screen` closed after it."""

    async def run():
        ctl = Controller(screen, asyncio.get_running_loop())
        try:
            await scenario(ctl)
        finally:
            ctl.close()

    asyncio.run(run())


def held(request: int = 1) -> FakeScreen:
    """A screen whose computation of `request` waits at its gate until the test opens it."""
    screen = FakeScreen()
    screen.gates[request] = threading.Event()
    return screen


async def send(ctl: Controller, screen: FakeScreen, value: int = 1) -> None:
    """The controls move to `value`: the controller hands it to the worker, which starts computing it."""
    screen.value = value
    ctl.schedule(MAP)
    await until(lambda: screen.computed[-1:] == [value])


def test_a_newer_request_supersedes_the_one_in_flight():
    screen = held(1)

    async def scenario(ctl):
        await send(ctl, screen, 1)  # the worker computes 1, held at its gate
        first = ctl.in_flight
        screen.value = 2
        ctl.schedule(MAP)
        await asyncio.sleep(0)
        assert ctl.in_flight != first and ctl.busy
        screen.gates[1].set()  # 1 ends after 2 was asked for: stale, never shown
        await until(lambda: not ctl.busy)

    drive(screen, scenario)
    assert screen.computed == [1, 2] and screen.shows == [2] and screen.shown == (2, "map 2")
    assert screen.busy_with == [1, 2, None]


def test_opacity_while_a_map_is_in_flight_reblends_at_once_without_a_model_check():
    screen = held(1)

    async def scenario(ctl):
        ctl.redraw_now(MAP)  # the first view, drawn here (as the widget does when made)
        await send(ctl, screen, 1)
        assert screen.computed == [0, 1]
        checks = screen.catch_ups
        ctl.schedule(BLEND)
        await asyncio.sleep(0)
        assert screen.blends == 1 and screen.catch_ups == checks and screen.shown == (0, "map 0")
        screen.gates[1].set()
        await until(lambda: not ctl.busy)

    drive(screen, scenario)
    assert screen.shown == (1, "map 1")


def test_a_cell_computing_now_drops_the_worker_result():
    screen = held(1)

    async def scenario(ctl):
        await send(ctl, screen, 1)
        screen.value = 5
        assert ctl.flush(now=True) is None  # a property read in a cell: computed here
        assert screen.shown == (5, "map 5") and ctl.in_flight is None
        screen.gates[1].set()
        await asyncio.sleep(0.05)

    drive(screen, scenario)
    assert screen.shows == [5]


@pytest.mark.parametrize("background", [False, True])
def test_an_error_keeps_the_last_good_state(background):
    screen = FakeScreen()

    async def run():
        ctl = Controller(screen, asyncio.get_running_loop() if background else None)
        try:
            screen.value = 1
            assert ctl.redraw_now(MAP) is None and screen.shown == (1, "map 1")
            screen.value = -1
            ctl.schedule(MAP)
            await until(lambda: not ctl.busy)
            assert screen.errors == ["cannot show -1"]
            error = ctl.flush(now=True) if screen.value == -1 else None
            assert error is None  # the controls went back to 1, which draws
        finally:
            ctl.close()

    asyncio.run(run())
    assert screen.shown == (1, "map 1") and screen.value == 1 and screen.shows.count(-1) == 0
