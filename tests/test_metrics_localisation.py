"""camwidget.metrics.localisation: a box as a mask, the pointing game (with its tolerance) and the energy pointing
game, each against a count written here on maps at the images' own size."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from camwidget.errors import CAMError
from camwidget.metrics.localisation import energy_pointing_game, pointing_game, region_mask

SIZE = (24, 32)


@settings(max_examples=50, deadline=None)
@given(st.integers(-5, 23), st.integers(-5, 31), st.integers(1, 30), st.integers(1, 30))
def test_a_box_is_the_pixels_inside_it(top, left, height, width):
    bottom, right = top + height, left + width
    if bottom <= 0 or right <= 0:
        with pytest.raises(CAMError, match="is not one"):
            region_mask((top, left, bottom, right), SIZE)
        return
    mask = region_mask((top, left, bottom, right), SIZE)
    rows, cols = np.indices(SIZE)
    np.testing.assert_array_equal(mask, (rows >= top) & (rows < bottom) & (cols >= left) & (cols < right))


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 6), st.integers(1, 10), st.sampled_from(["above", "below", "left", "right"]))
def test_a_peak_hits_within_the_tolerance_of_the_box(tolerance, distance, side):
    """The box is rows 10-13, columns 12-17; the map's one peak `distance` pixels straight out from one side."""
    box = (10, 12, 14, 18)
    row, col = {"above": (10 - distance, 14), "below": (13 + distance, 14)}.get(side, (11, None))
    if side in ("left", "right"):
        col = 12 - distance if side == "left" else 17 + distance
    maps = np.zeros((1, *SIZE), np.float32)
    maps[0, row, col] = 1.0
    images = np.zeros((1, *SIZE, 3), np.float32)
    assert pointing_game(images, maps, [box], tolerance=tolerance).tolist() == [distance <= tolerance]


def test_the_energy_game_is_the_positive_mass_inside_over_all_of_it(rng):
    maps = rng.normal(size=(3, *SIZE)).astype(np.float32)
    maps[2] = -np.abs(maps[2])  # nothing positive: 0
    boxes = [(0, 0, 12, 16), (5, 5, 20, 30), (0, 0, 24, 32)]
    images = np.zeros((3, *SIZE, 3), np.float32)
    shares = energy_pointing_game(images, maps, boxes)
    for m, (top, left, bottom, right), share in zip(maps[:2], boxes, shares):
        positive = np.maximum(m, 0)
        assert share == pytest.approx(positive[top:bottom, left:right].sum() / positive.sum(), rel=1e-5)
    assert shares[2] == 0.0
    hits = pointing_game(images, maps, boxes, tolerance=0)
    for m, (top, left, bottom, right), hit in zip(maps, boxes, hits):
        r, c = np.unravel_index(np.argmax(m), m.shape)
        assert hit == (top <= r < bottom and left <= c < right)
    with pytest.raises(CAMError, match="2 regions for 3 images"):
        pointing_game(images, maps, boxes[:2])
