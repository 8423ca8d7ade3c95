"""CAMExplorer's settable attributes (``.layer``, ``.alpha``, ...): their trait types, checks and controls.

Each attribute is a traitlets trait of the explorer, kept in step with one control (:data:`CONTROLS`). A value
set from code goes through its check (:data:`CHECKS`), which gives the value to keep, of the attribute's type,
or raises naming what is wrong and what would be right (a TypeError or CAMError, the words compute_cam uses);
a value its control hands over is already one of the control's own, and is taken as it is. The checks read the
explorer's state through its :class:`~camwidget.explorer.driver.Driver` (the session, the controls, whether the
class follows the top one); no widget is built and no map is computed here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from traitlets import Bool, Float, Int, Unicode

from camwidget import render
from camwidget.errors import CAMError
from camwidget.explain import Options
from camwidget.explorer.driver import Driver
from camwidget.methods import get_method
from camwidget.targets import check_class_index


class Checked:
    """Mixin for a trait type whose values are checked by the explorer's ``@validate`` (see :data:`CHECKS`)
    alone: a wrong value raises the explorer's own words, never traitlets' TraitError (whose type check runs
    before any ``@validate`` and would say "expected a float, not the str '0.3'"). The check also turns the
    value into the type declared."""

    def validate(self, obj: Any, value: Any) -> Any:
        return value


class CheckedUnicode(Checked, Unicode):  # type: ignore[misc]
    """A str attribute (see :class:`Checked`)."""


class CheckedBool(Checked, Bool):  # type: ignore[misc]
    """A True/False attribute (see :class:`Checked`)."""


class CheckedFloat(Checked, Float):  # type: ignore[misc]
    """A float attribute (see :class:`Checked`)."""


class CheckedInt(Checked, Int):  # type: ignore[misc]
    """An int attribute (see :class:`Checked`)."""


def check_alpha(alpha: Any) -> float:
    """The overlay's opacity as a float in [0, 1].

    Raises:
        TypeError: not a number (True and False are not opacities).
        CAMError: outside [0, 1].
    """
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float, np.floating, np.integer)):
        raise TypeError(f"alpha must be a number between 0 and 1, not {type(alpha).__name__}")
    if not 0.0 <= float(alpha) <= 1.0:
        raise CAMError(f"alpha (the overlay's opacity) must be between 0 and 1, not {alpha}")
    return float(alpha)


def _image(driver: Driver) -> int:
    return int(driver.c.image.value)


def _layer_path(driver: Driver, name: str) -> str:
    driver.catch_up()  # the layers of the model as it is now
    return driver.session.layout(_image(driver)).resolve(name).path


def _option(name: str, kind: Callable[[Any], Any]) -> Callable[[Driver, Any], Any]:
    """The check of one of the Options fields (score, eigen_smooth, aug_smooth), as compute_cam checks it."""

    def check(driver: Driver, value: Any) -> Any:
        Options(**{name: value}).checked()
        return kind(value)

    return check


def _offer_colormap(driver: Driver, name: str) -> str:
    render.colormap_table(name)
    driver.c.offer_colormap(name)
    return name


def _check_image(driver: Driver, value: Any) -> int:
    count = len(driver.session.pixels)
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"image_index must be an int, not {type(value).__name__}")
    if not 0 <= value < count:
        raise CAMError(f"image_index {value} is out of range: there are {count} images (0..{count - 1})")
    return int(value)


def _check_frame(driver: Driver, value: Any) -> int:
    frames = driver.session.frames(_image(driver))
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not 0 <= value < frames:
        raise CAMError(
            f"frame must be an int from 0 to {frames - 1} (this {'clip' if frames > 1 else 'image'} "
            f"has {frames} frame{'s' if frames > 1 else ''}), not {value!r}"
        )
    return int(value)


def _check_class(driver: Driver, value: int | None) -> int:
    """A class in range, chosen (it stays across pictures); None: the picture's top class, followed from now on
    (``driver.follow_top``; a view that fails puts it back with the controls, see Driver.restore_last_view)."""
    driver.catch_up()
    session = driver.session
    if value is None:
        chosen = int(np.argmax(session.probabilities(_image(driver), driver.c.layer.value)))
    else:
        chosen = check_class_index(value, session.n_classes)
    driver.follow_top = value is None
    return chosen


#: Each settable attribute's check: (driver, value) -> the value to keep, or raises naming the problem.
CHECKS: dict[str, Callable[[Driver, Any], Any]] = {
    "layer": _layer_path,
    "method": lambda driver, name: get_method(name).name,
    "score": _option("score", str),
    "eigen_smooth": _option("eigen_smooth", bool),
    "aug_smooth": _option("aug_smooth", bool),
    "alpha": lambda driver, value: check_alpha(value),
    "colormap": _offer_colormap,
    "image_index": _check_image,
    "frame": _check_frame,
    "class_index": _check_class,
}

#: Each settable attribute's control (its attribute in Controls) and how the control's value reads as the
#: attribute's.
CONTROLS: dict[str, tuple[str, Callable[[Any], Any]]] = {
    "layer": ("layer", str),
    "method": ("method", str),
    "score": ("score", str),
    "eigen_smooth": ("eigen", bool),
    "aug_smooth": ("aug", bool),
    "alpha": ("alpha", float),
    "colormap": ("colormap", str),
    "image_index": ("image", int),
    "frame": ("frame", int),
    "class_index": ("class_", int),
}
