"""camwidget.limits: the numbers every surface uses, defined once and read before Keras."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import numpy as np
import pytest

import camwidget as cw
from camwidget import limits
from camwidget.command_line import parser
from camwidget.errors import ImageError
from camwidget.inputs.images import load_pictures, read_picture, to_rgb_uint8
from camwidget.pipeline.batch import explain_many


def test_the_module_imports_nothing():
    """The command line reads the limits before Keras is imported: the module may import nothing at all."""
    tree = ast.parse(Path(limits.__file__).read_text())
    assert not [node for node in ast.walk(tree) if isinstance(node, (ast.Import, ast.ImportFrom))]


def test_a_picture_over_the_pixel_limit_is_refused_and_one_at_it_is_read():
    """Arrays that hold one value (broadcast: no memory) whose shapes are one pixel over the limit, and at it."""
    over = np.broadcast_to(np.uint8(7), (limits.MAX_PIXELS // 1000 + 1, 1000))
    with pytest.raises(ImageError, match=f"more than the limit of {limits.MAX_PIXELS / 1e6:.0f} megapixels"):
        read_picture(over)
    at = np.broadcast_to(np.uint8(7), (limits.MAX_PIXELS // 1000, 1000))
    assert read_picture(at).pixels.shape == (limits.MAX_PIXELS // 1000, 1000, 3)


@pytest.mark.parametrize(
    "function, parameter, limit",
    [
        (read_picture, "max_pixels", "MAX_PIXELS"),
        (to_rgb_uint8, "max_pixels", "MAX_PIXELS"),
        (load_pictures, "max_pixels", "MAX_PIXELS"),
        (cw.CAMExplorer, "max_pixels", "MAX_PIXELS"),
        (cw.CAMExplorer, "max_side", "MAX_SIDE"),
        (explain_many, "max_side", "MAX_SIDE"),
    ],
)
def test_every_surface_defaults_to_the_limits(function, parameter, limit):
    assert inspect.signature(function).parameters[parameter].default == getattr(limits, limit)


def test_the_command_line_defaults_to_the_side_limit_and_says_so():
    explain = parser()._subparsers._group_actions[0].choices["explain"]
    assert explain.parse_args(["m.keras", "x", "--out", "o"]).max_side == limits.MAX_SIDE
    assert f"(default {limits.MAX_SIDE})" in " ".join(explain.format_help().split())
