"""camwidget.classes: what each output class is called, and the one check of a class number a user gives."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from camwidget.classes import check_class_index, imagenet_class_names, resolve_class_names
from camwidget.errors import CAMError

# ImageNet-1k's classes in the order Keras's models score them (WordNet ids sorted), a few by hand
IMAGENET = {0: "tench", 1: "goldfish", 134: "crane (bird)", 281: "tabby", 285: "Egyptian cat", 517: "crane (machine)"}
IMAGENET[999] = "toilet tissue"


def test_imagenet_names_are_the_thousand_in_keras_order():
    names = imagenet_class_names()
    assert len(names) == 1000 and len(set(names)) == 999  # the two cranes told apart; "maillot" stands twice
    assert {i: names[i] for i in IMAGENET} == IMAGENET


def test_names_given_defaulted_or_refused():
    assert resolve_class_names(None, 3) == ["class 0", "class 1", "class 2"]
    assert resolve_class_names(None, 1000) == imagenet_class_names()
    assert resolve_class_names(("cat", "dog"), 2) == ["cat", "dog"]
    assert resolve_class_names({2: "fox", np.int64(0): "cat"}, 4) == ["cat", "class 1", "fox", "class 3"]
    with pytest.raises(CAMError, match="class_names has 2 names, but the model's output has 3 classes"):
        resolve_class_names(["cat", "dog"], 3)
    for key in (3, -1, "0"):
        with pytest.raises(CAMError, match=rf"class_names has key {key!r}; keys must be class indices 0..2"):
            resolve_class_names({key: "x"}, 3)
    with pytest.raises(TypeError, match="class_names must be a list of names or a dict"):
        resolve_class_names("cat dog fox", 3)


@given(st.integers(1, 2000), st.integers(-5000, 5000))
def test_a_class_number_is_kept_within_range_and_refused_outside(n_classes, value):
    for given_ in (value, np.int64(value)):
        if 0 <= value < n_classes:
            kept = check_class_index(given_, n_classes)
            assert kept == value and type(kept) is int
        elif value < 0:
            with pytest.raises(CAMError, match=f"class_index {value} is negative; classes are numbered 0.."):
                check_class_index(given_, n_classes)
        else:
            with pytest.raises(CAMError, match=f"class_index {value} is out of range: the model's output has"):
                check_class_index(given_, n_classes)


@pytest.mark.parametrize("value", [True, np.bool_(False), 1.0, "1", None, [1]])
def test_a_class_number_that_is_not_a_whole_number_is_refused(value):
    with pytest.raises(
        TypeError, match=f"versus must be an int \\(or None for the top class\\), not {type(value).__name__}"
    ):
        check_class_index(value, 3, "versus")
