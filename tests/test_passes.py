"""What the explorer keeps per (image, class) and its budget (camwidget.explorer.passes), and the words for a
blank map."""

from __future__ import annotations

import numpy as np
import pytest

from camwidget.engines import LayerCapture, LayerInfo
from camwidget.explorer.passes import Passes, capture_nbytes, diagnose, within_budget


def info(path: str, order: int, shape=(4, 4, 2)) -> LayerInfo:
    return LayerInfo(path, None, shape, calls=1, order=order, reaches_output=True, computes_features=True)


def test_a_layers_capture_costs_its_activations_and_gradients_in_float32():
    assert capture_nbytes(info("conv", 0, (4, 4, 2))) == 2 * 4 * 32
    assert capture_nbytes(info("tokens", 0, (None, 8))) == 2 * 4 * 8  # an unknown length counts as one


def test_the_budget_keeps_the_chosen_layer_and_those_nearest_after_it_first():
    layers = [info(f"l{i}", i) for i in range(6)]  # 256 bytes each
    kept = within_budget(layers, layers[2], budget=3 * 256)
    assert [i.path for i in kept] == ["l2", "l3", "l4"]  # forward order, the chosen one and the next two
    kept = within_budget(layers[:4], layers[2], budget=3 * 256)
    assert [i.path for i in kept] == ["l1", "l2", "l3"]  # nothing left after it: the nearest before
    assert [i.path for i in within_budget(layers, layers[5], budget=1)] == ["l5"]  # the chosen one always


def test_passes_say_where_a_layers_gradients_came_from_and_their_size():
    gradients = {"a": np.zeros((1, 4, 4, 2), np.float32), "b": np.zeros((1, 2, 2, 2), np.float32)}
    passes = Passes(gradients, np.zeros((1, 3)), np.zeros((1, 3)), np.zeros(1, int), 0.0, warmed=frozenset({"b"}))
    assert passes.nbytes == 4 * (32 + 8)
    assert passes.source("b") == "from the warm-up pass's gradients"
    assert passes.source("a") == "from an earlier pass's gradients"


def capture(activations=1.0, gradients=1.0, probability=0.5) -> LayerCapture:
    a = np.full((1, 2, 2, 1), activations, np.float32)
    g = np.full((1, 2, 2, 1), gradients, np.float32)
    return LayerCapture(a, g, np.zeros((1, 2)), np.array([[1 - probability, probability]]), np.array([1]))


@pytest.mark.parametrize(
    "made, raw, per_position, words",
    [
        (capture(), np.ones((2, 2)), False, None),
        (capture(gradients=0.0), np.ones((2, 2)), False, "gradients vanished at conv: the score for 'dog'"),
        (capture(activations=0.0), np.ones((2, 2)), False, "layer conv is all zero for this image"),
        (capture(), -np.ones((2, 2)), False, "no positive evidence for 'dog' at conv"),
        (capture(probability=0.0), np.ones((2, 2)), True, "no pixel of this image is predicted as 'dog'"),
    ],
)
def test_a_blank_map_is_said_in_words_naming_why(made, raw, per_position, words):
    said = diagnose(made, raw, info("conv", 0), ["cat", "dog"], per_position)
    assert said == words if words is None else said.startswith(words)
