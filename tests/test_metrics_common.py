"""camwidget.metrics.common: each pixel's rank by its map (ties in pixel order), and the baseline pixels are
removed to, each against a formula written here."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from camwidget.errors import CAMError
from camwidget.metrics.common import baseline_of, rank_pixels

MAPS = hnp.arrays(
    np.float32,
    st.tuples(st.integers(1, 3), st.integers(1, 6), st.integers(1, 6)),
    elements=st.integers(-3, 3).map(float),  # few values: many ties
)


@settings(max_examples=50, deadline=None)
@given(MAPS)
def test_a_pixels_rank_counts_the_pixels_before_it(maps):
    """rank = how many pixels have a larger value, plus how many with the same value come earlier (row-major)."""
    ranks = rank_pixels(maps)
    assert ranks.shape == maps.shape and ranks.dtype == np.int32
    for n, m in enumerate(maps):
        flat = m.ravel()
        for i, value in enumerate(flat):
            want = int((flat > value).sum() + (flat[:i] == value).sum())
            assert ranks[n].ravel()[i] == want


@settings(max_examples=25, deadline=None)
@given(hnp.arrays(np.float32, st.tuples(st.integers(1, 3), st.integers(1, 5), st.integers(1, 5), st.integers(1, 3))))
def test_the_named_baselines_are_the_mean_colour_and_zero(images):
    images = np.nan_to_num(images, nan=0.0, posinf=1.0, neginf=-1.0).clip(-1e3, 1e3)
    mean = baseline_of(images, "mean")
    for n, image in enumerate(images):
        for c in range(images.shape[-1]):
            np.testing.assert_allclose(mean[n, ..., c], np.full(image.shape[:2], image[..., c].mean()), rtol=1e-5)
    assert not baseline_of(images, "zero").any() and baseline_of(images, "zero").shape == images.shape
    np.testing.assert_array_equal(baseline_of(images, 0.25), np.full(images.shape, 0.25, np.float32))
    given_array = images[::-1].copy()
    np.testing.assert_array_equal(baseline_of(images, given_array), given_array)


def test_a_blur_keeps_a_constant_image_and_a_bad_baseline_is_refused():
    images = np.full((2, 20, 30, 3), 0.4, np.float32)
    np.testing.assert_allclose(baseline_of(images, "blur"), images, atol=1e-6)
    with pytest.raises(CAMError, match="baseline must be one of 'mean', 'blur', 'zero'"):
        baseline_of(images, "grey")
    with pytest.raises(CAMError, match="baseline must be a finite number"):
        baseline_of(images, float("inf"))
    with pytest.raises(CAMError, match=r"baseline has shape \(1, 20, 30, 3\); expected the images' shape"):
        baseline_of(images, images[:1])
