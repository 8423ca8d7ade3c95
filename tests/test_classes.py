"""camwidget.classes: what each output class is called (the one check of a class number is targets.check_class_index,
tested in test_targets.py)."""

from __future__ import annotations

import numpy as np
import pytest

from camwidget.classes import imagenet_class_names, resolve_class_names
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
