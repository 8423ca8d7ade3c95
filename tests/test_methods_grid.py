"""camwidget.methods.grid: a capture of any map kind as the (N, a, b, K) grid the methods read, and maps on that
grid back on the layer's own positions, against the index arithmetic written here."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from camwidget.engines import LayerCapture, MapGeometry
from camwidget.methods.grid import as_grid, from_grid


def capture(shape, seed):
    rng = np.random.default_rng(seed)
    n = shape[0]
    return LayerCapture(
        activations=rng.normal(size=shape).astype(np.float32),
        gradients=rng.normal(size=shape).astype(np.float32),
        scores=np.zeros((n, 2), np.float32),
        probabilities=np.zeros((n, 2), np.float32),
        class_index=np.zeros(n, np.int64),
    )


small = st.integers(1, 4)


@settings(max_examples=30, deadline=None)
@given(small, small, small, st.integers(0, 3), small, st.integers(0, 99))
def test_tokens_drop_the_leading_ones_and_lie_row_by_row_on_the_patch_grid(n, h, w, leading, k, seed):
    c = capture((n, leading + h * w, k), seed)
    grid = as_grid(c, MapGeometry("tokens", (h, w), leading))
    for field in ("activations", "gradients"):
        tokens, got = getattr(c, field), getattr(grid, field)
        assert got.shape == (n, h, w, k)
        for i in range(h):
            for j in range(w):
                np.testing.assert_array_equal(got[:, i, j], tokens[:, leading + i * w + j])
    maps = np.arange(n * h * w, dtype=np.float32).reshape(n, h, w)
    np.testing.assert_array_equal(from_grid(maps, MapGeometry("tokens", (h, w), leading), (h, w)), maps)


@settings(max_examples=30, deadline=None)
@given(small, st.integers(1, 9), small, st.integers(0, 99))
def test_a_signal_is_one_column_and_its_maps_come_back_as_a_line(n, length, k, seed):
    c = capture((n, length, k), seed)
    geometry = MapGeometry("signal", (length,))
    grid = as_grid(c, geometry)
    assert grid.activations.shape == (n, length, 1, k)
    np.testing.assert_array_equal(grid.gradients[:, :, 0, :], c.gradients)
    maps = np.random.default_rng(seed).normal(size=(n, length, 1))
    np.testing.assert_array_equal(from_grid(maps, geometry, (length,)), maps[:, :, 0])


@settings(max_examples=30, deadline=None)
@given(small, small, small, small, small, st.integers(0, 99))
def test_a_volume_stacks_its_depth_into_the_rows_and_back(n, d, h, w, k, seed):
    c = capture((n, d, h, w, k), seed)
    geometry = MapGeometry("volume", (d, h, w))
    grid = as_grid(c, geometry)
    assert grid.activations.shape == (n, d * h, w, k)
    for z in range(d):
        np.testing.assert_array_equal(grid.activations[:, z * h : (z + 1) * h], c.activations[:, z])
    maps = grid.activations.sum(axis=-1)
    back = from_grid(maps, geometry, (d, h, w))
    np.testing.assert_array_equal(back, c.activations.sum(axis=-1))
    image = capture((n, h, w, k), seed)  # an image is read as it is
    assert as_grid(image, MapGeometry("image", (h, w))).activations is image.activations
