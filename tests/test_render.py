"""camwidget.render: upsample, colour, blend, encode."""

import io

import numpy as np
import pytest
from PIL import Image

from camwidget import render
from camwidget.errors import CAMError


def test_overlay_is_the_blend_of_the_colormapped_upsampled_map(rng):
    image = rng.integers(0, 256, (30, 40, 3), dtype=np.uint8)
    cam = rng.uniform(0, 1, (3, 4)).astype(np.float32)
    heat = render.colorize(render.upsample(cam, 30, 40), "viridis")
    expected = np.clip(np.rint(0.3 * heat.astype(float) + 0.7 * image.astype(float)), 0, 255)
    assert np.abs(render.overlay(image, cam, 0.3, "viridis").astype(float) - expected).max() <= 1
    assert render.upsample(cam, 30, 40).min() >= 0 and render.upsample(cam, 30, 40).max() <= 1


def test_bad_alpha_and_colormap_say_what_is_right():
    with pytest.raises(CAMError, match="between 0 and 1"):
        render.blend(np.zeros((2, 2, 3), np.uint8), np.zeros((2, 2, 3), np.uint8), 1.5)
    with pytest.raises(CAMError, match="did you mean 'viridis'"):
        render.colormap_table("viridiss")


def test_small_pictures_go_exact_as_png_large_ones_as_jpeg(rng):
    small = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    fmt, data = render.display_bytes(small)
    assert fmt == "png" and np.array_equal(np.asarray(Image.open(io.BytesIO(data))), small)
    large = np.full((800, 1000, 3), 120, np.uint8)
    fmt, data = render.display_bytes(large)
    assert fmt == "jpeg" and np.abs(np.asarray(Image.open(io.BytesIO(data))).astype(int) - 120).max() <= 2
