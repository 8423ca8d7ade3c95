"""The explorer's parts made as CAMExplorer makes them, without the widget: for the tests of one part
(test_controls, test_driver, test_screen, test_attributes)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from camwidget.explorer.controller import MAP, Controller
from camwidget.explorer.controls import Controls
from camwidget.explorer.driver import Driver
from camwidget.explorer.screen import Screen
from camwidget.explorer.search import ClassSearch
from camwidget.explorer.session import ExplorerSession
from camwidget.explorer.view_request import modes_for

CLASSES = ["cat", "dog", "fox"]


@dataclass
class Parts:
    session: ExplorerSession
    controls: Controls
    screen: Screen
    driver: Driver
    controller: Controller

    def close(self) -> None:
        self.controller.close()
        self.session.close()
        self.controls.close()


def make_parts(model, pictures: list[np.ndarray], class_names=None, draw: bool = True) -> Parts:
    """A session of `pictures` (already in the model's input space), its controls on the default layer, and a
    screen, driver and controller (no event loop: every change draws at once), wired; `draw`: the first view
    drawn too."""
    session = ExplorerSession(model, pictures, preprocess="none", class_names=class_names, warm_up=False)
    layout = session.layout(0)
    controls = Controls(
        session.kind,
        layout,
        layout.default_path(),
        modes_for(session.kind),
        method="gradcam",
        alpha=0.5,
        colormap="jet",
        score="auto",
        eigen_smooth=False,
        aug_smooth=False,
    )
    screen = Screen(controls, session)
    search = ClassSearch(controls, session, lambda error: screen.say(error=error))
    driver = Driver(session, controls, screen, search, follow_top=True)
    driver.controller = controller = Controller(driver, None)
    driver.refresh_image_options(0)
    driver.refresh_class_options(None)
    driver.wire()
    if draw:
        assert controller.redraw_now(MAP) is None
    return Parts(session, controls, screen, driver, controller)


def parts_fixture(count: int = 2, shape: tuple[int, int, int] = (32, 32, 3), draw: bool = True):
    """A fixture of the parts for `small` (conftest) and `count` random pictures of `shape`, class names
    cat, dog, fox; closed after the test. In a test module: ``parts = parts_fixture(2)``."""

    @pytest.fixture
    def parts(small, rng):
        made = make_parts(small, [rng.integers(0, 256, shape, dtype=np.uint8) for _ in range(count)], CLASSES, draw)
        yield made
        made.close()

    return parts
