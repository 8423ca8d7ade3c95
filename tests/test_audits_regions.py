"""camwidget.audits.regions: the regions' cells counted, shares and masses against loops written here, the
pixels a class shares, the spread of a suspect region, and the words for where a map lies."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from camwidget.audits.regions import (
    mask_share,
    mass,
    name_region,
    on_shared,
    region_shares,
    regions,
    shared_pixels,
    spread,
)


def test_the_regions_of_a_16_grid():
    found = regions(16)
    assert found["centre"].sum() == 64 and found["centre"][4:12, 4:12].all()  # a quarter of the area
    assert found["top border"].sum() == 32 and found["top border"][:2].all()  # a band of 16 // 8 rows
    assert found["border"].sum() == 16 * 16 - 12 * 12  # 44% of the area
    assert found["bottom-right corner"].sum() == 16 and found["bottom-right corner"][12:, 12:].all()


@settings(max_examples=30, deadline=None)
@given(side=st.sampled_from([4, 8, 16]), n=st.integers(1, 4), seed=st.integers(0, 2**16))
def test_mass_and_shares_against_loops(side, n, seed):
    rng = np.random.default_rng(seed)
    maps = rng.random((n, side, side)).astype(np.float32) - 0.2  # some negative cells: a ReLU first
    maps[0] = 0.0 if n > 1 else maps[0]
    masses = mass(maps)
    for i in range(n):
        positive = np.maximum(maps[i], 0)
        total = positive.sum()
        expected = positive / total if total > 0 else np.zeros_like(positive)
        np.testing.assert_allclose(masses[i], expected, rtol=1e-5, atol=1e-7)
    shares = region_shares(masses)
    for name, cells in regions(side).items():
        for i in range(n):
            by_loop = sum(float(masses[i, r, c]) for r in range(side) for c in range(side) if cells[r, c])
            assert abs(shares[name][i] - by_loop) < 1e-5
    masks = (rng.random((n, side, side)) > 0.5).astype(np.float32)
    inside = [sum(float(masses[i, r, c]) for r in range(side) for c in range(side) if masks[i, r, c]) for i in range(n)]
    np.testing.assert_allclose(mask_share(masses, masks), inside, atol=1e-5)


def test_a_patch_every_picture_of_a_class_shows_is_its_own():
    rng = np.random.default_rng(0)
    own = rng.uniform(0, 1, (12, 8, 8, 3)).astype(np.float32)
    own[:, :2, :2] = 1.0  # a white mark in the corner of every picture of the class
    others = rng.uniform(0, 1, (12, 8, 8, 3)).astype(np.float32)
    shared, median = shared_pixels(own, others)
    assert (shared[:2, :2] == 1.0).all()  # every picture shows it: q = 1 -> 1; unlike the others' median
    assert shared[2:, :].max() == 0.0 and shared[:, 2:].max() == 0.0  # noise: no cell is shown alike
    np.testing.assert_allclose(median[:2, :2], 1.0)
    maps = np.zeros((12, 8, 8), np.float32)
    maps[:, 0, 0], maps[:, 5, 5] = 0.6, 0.4
    suspect = on_shared(maps, own, shared, median)
    np.testing.assert_allclose(suspect.sum(axis=(1, 2)), 0.6, rtol=1e-6)  # the mass on the mark


def test_spread_is_a_square_dilation():
    cells = np.zeros((7, 7), np.float32)
    cells[3, 3] = 1.0
    cells[0, 6] = 0.5
    grown = spread(cells, 1)
    expected = np.zeros((7, 7), np.float32)
    for r in range(7):
        for c in range(7):
            expected[r, c] = cells[max(0, r - 1) : r + 2, max(0, c - 1) : c + 2].max()
    np.testing.assert_array_equal(grown, expected)
    assert spread(cells, 0) is cells


def test_words_for_where_a_map_lies():
    corner = np.zeros((16, 16))
    corner[12:, :4] = 1.0
    assert name_region(corner) == "the bottom-left corner"
    frame = regions(16)["border"].astype(float)
    assert name_region(frame) == "the border all round (a frame)"
    box = np.zeros((16, 16))
    box[4:8, 8:12] = 1.0
    assert name_region(box) == "rows 25%-50% and columns 50%-75% of the picture"
    assert name_region(np.zeros((16, 16))) == "nowhere (an empty map)"
    background = np.ones((16, 16))
    assert name_region(background, np.ones((16, 16))).startswith("the background (the same in almost every picture")
