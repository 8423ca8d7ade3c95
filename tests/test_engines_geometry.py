"""camwidget.engines.geometry: how a layer's output reads as a map (image, tokens, signal, volume, or none), and
a token layer's patch grid: found (the fewest leading tokens whose rest make a grid of the picture's aspect) or
given, and refused in words where it cannot be right."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from camwidget.engines.geometry import MapGeometry, geometry_of, given_token_grid, token_grid
from camwidget.errors import LayerError


def fits(tokens, leading, h, w, height, width):
    """The grid's definition: the tokens after the leading ones are h*w whole square-ish patches of the picture."""
    return tokens - leading == h * w and height % h == 0 and width % w == 0 and height // h == width // w


@settings(max_examples=80, deadline=None)
@given(st.integers(1, 12), st.integers(1, 12), st.integers(1, 16), st.integers(0, 8))
def test_the_found_grid_has_the_fewest_leading_tokens_that_fit(rows, columns, patch, leading):
    height, width, tokens = rows * patch, columns * patch, leading + rows * columns
    found = token_grid(tokens, (height, width, 3))
    assert found is not None
    k, h, w = found
    assert fits(tokens, k, h, w, height, width) and k <= leading
    for fewer in range(k):  # no grid fits with fewer leading tokens (every h x w tried)
        count = tokens - fewer
        assert not any(fits(tokens, fewer, a, count // a, height, width) for a in range(1, count + 1) if count % a == 0)


def test_vision_transformers_grids_and_the_other_kinds():
    assert token_grid(197, (224, 224, 3)) == (1, 14, 14)  # ViT-B/16: a class token
    assert token_grid(198, (224, 224, 3)) == (2, 14, 14)  # DeiT: class and distillation tokens
    assert token_grid(129, (128, 256, 3)) == (1, 8, 16)  # a wide picture, 16-pixel patches
    assert token_grid(100, (None, 224, 3)) is None
    assert geometry_of((7, 7, 512), (224, 224, 3)) == MapGeometry("image", (7, 7))
    assert geometry_of((197, 768), (224, 224, 3)) == MapGeometry("tokens", (14, 14), 1)
    assert geometry_of((50, 8), (200, 1)) == MapGeometry("signal", (50,))
    assert geometry_of((4, 8, 8, 16), (16, 32, 32, 3)) == MapGeometry("volume", (4, 8, 8))
    assert geometry_of((17, 2, 64), (32, 32, 3)) is None  # attention's (tokens, heads, dim): no map of the image
    assert geometry_of((10,), (32, 32, 3)) is None and geometry_of(None, (32, 32, 3)) is None
    geometry = MapGeometry("tokens", (14, 14), 1)
    assert geometry.positions == 196 and geometry.describe() == "14×14 (tokens, 1 leading)"
    assert MapGeometry("image", (None, 7)).positions is None and MapGeometry("image", (None, 7)).describe() == "?×7"


def test_a_given_grid_is_taken_or_refused_naming_the_one_that_fits():
    assert given_token_grid(197, (224, 224, 3), (14, 14), None) == MapGeometry("tokens", (14, 14), 1)
    assert given_token_grid(197, (224, 224, 3), None, 1) == MapGeometry("tokens", (14, 14), 1)
    with pytest.raises(LayerError, match=r"grid \(15, 15\) has 225 positions, but the layer has 197 tokens"):
        given_token_grid(197, (224, 224, 3), (15, 15), None)
    with pytest.raises(LayerError, match=r"leaves 1 leading tokens, but leading_tokens=2"):
        given_token_grid(197, (224, 224, 3), (14, 14), 2)
    with pytest.raises(LayerError, match=r"is the picture's aspect turned on its side.*grid=\(8, 16\)"):
        given_token_grid(129, (128, 256, 3), (16, 8), None)
