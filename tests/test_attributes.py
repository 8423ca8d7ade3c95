"""CAMExplorer's settable attributes (camwidget.explorer.attributes): trait types, checks and controls."""

from __future__ import annotations

import ipywidgets as widgets
import numpy as np
import pytest
import traitlets
from explorer_parts import parts_fixture

import camwidget as cw
from camwidget.errors import CAMError
from camwidget.explorer.attributes import CHECKS, CONTROLS, CheckedFloat, CheckedInt, check_alpha

parts = parts_fixture(2)


def test_each_attribute_is_a_trait_with_a_check_and_a_control(parts):
    assert set(CHECKS) == set(CONTROLS)
    traits = cw.CAMExplorer.class_traits()
    assert all(isinstance(traits[name], traitlets.TraitType) for name in CHECKS)
    controls = [getattr(parts.controls, control) for control, _ in CONTROLS.values()]
    assert all(isinstance(control, widgets.ValueWidget) for control in controls)
    assert len({id(control) for control in controls}) == len(CONTROLS)  # one control each


def test_checked_traits_leave_the_words_to_validate():
    class Opacity(traitlets.HasTraits):
        alpha = CheckedFloat()
        index = CheckedInt()

        @traitlets.validate("alpha")
        def _alpha(self, proposal):
            return check_alpha(proposal["value"])

    o = Opacity()
    with pytest.raises(TypeError, match="alpha must be a number between 0 and 1, not str"):
        o.alpha = "0.3"  # a plain Float would raise TraitError before any @validate
    o.alpha = np.float32(0.25)
    assert o.alpha == 0.25 and type(o.alpha) is float
    o.index = "anything"  # no @validate: taken as it is
    assert o.index == "anything"


@pytest.mark.parametrize(
    "value, error, words",
    [
        ("0.3", TypeError, "not str"),
        (True, TypeError, "not bool"),
        (1.5, CAMError, "between 0 and 1, not 1.5"),
        (-0.1, CAMError, "between 0 and 1"),
    ],
)
def test_alpha_outside_its_range_or_not_a_number_is_refused(value, error, words):
    with pytest.raises(error, match=words):
        check_alpha(value)


def test_alpha_of_any_number_kind_is_a_float():
    assert [check_alpha(v) for v in (0, 1, np.float16(0.5), np.int64(1))] == [0.0, 1.0, 0.5, 1.0]


def test_a_layer_is_resolved_to_its_path_and_a_wrong_one_names_the_closest(parts):
    check = CHECKS["layer"]
    assert check(parts.driver, "conv_a") == "conv_a"
    with pytest.raises(CAMError, match="closest: 'conv_b'"):
        check(parts.driver, "conv_bb")


def test_a_class_is_chosen_or_follows_the_top_class(parts):
    driver, check = parts.driver, CHECKS["class_index"]
    top = int(np.argmax(parts.session.probabilities(0)))
    assert check(driver, 2) == 2 and driver.follow_top is False
    assert check(driver, None) == top and driver.follow_top is True
    with pytest.raises(CAMError, match="out of range"):
        check(driver, 3)
    assert driver.follow_top is True  # a refused class changes nothing


def test_pictures_frames_and_options_are_checked_in_the_explorers_words(parts):
    driver = parts.driver
    assert CHECKS["image_index"](driver, np.int64(1)) == 1
    with pytest.raises(TypeError, match="image_index must be an int, not float"):
        CHECKS["image_index"](driver, 1.0)
    with pytest.raises(CAMError, match=r"out of range: there are 2 images \(0..1\)"):
        CHECKS["image_index"](driver, 2)
    with pytest.raises(CAMError, match="frame must be an int from 0 to 0 .this image has 1 frame."):
        CHECKS["frame"](driver, 1)
    assert CHECKS["eigen_smooth"](driver, np.bool_(True)) is True
    with pytest.raises(TypeError, match="aug_smooth must be True or False"):
        CHECKS["aug_smooth"](driver, 1)
    assert CHECKS["method"](driver, " GradCAM++ ") == "gradcam++"  # by its canonical name


def test_a_colormap_not_in_the_menu_is_offered_there(parts):
    assert CHECKS["colormap"](parts.driver, "cividis") == "cividis"
    assert "cividis" in parts.controls.colormap.options
    with pytest.raises(ValueError, match="not a matplotlib colormap"):
        CHECKS["colormap"](parts.driver, "nope")
