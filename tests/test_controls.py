"""The explorer's widgets (camwidget.explorer.controls): built, named, laid out and sized; no state of the view."""

from __future__ import annotations

import ipywidgets as widgets
import numpy as np
import pytest
from explorer_parts import parts_fixture

from camwidget import render
from camwidget.explorer.controls import (
    MIN_DISPLAY_WIDTH,
    PANEL_HEIGHT,
    PANEL_WIDTH,
    colormap_options,
    layer_options,
    panel_size,
)

parts = parts_fixture(1, draw=False)


def shown(root: widgets.Widget) -> list[widgets.Widget]:
    """Every widget in the tree under `root`."""
    found = [root]
    for child in getattr(root, "children", ()):
        found += shown(child)
    return found


def test_every_named_widget_has_a_place_in_the_layout_and_one_name(parts):
    c = parts.controls
    named = c.named()
    in_rows = [w for row in c.rows() for w in shown(row)]
    assert all(any(w is widget for w in in_rows) for widget in named.values()), "a named widget left out"
    assert len({id(w) for w in named.values()}) == len(named)  # no widget under two names
    assert {"layer", "class", "alpha", "colormap", "status", "overlay"} <= set(named)


def test_the_layer_menu_lists_the_spatial_layers_with_their_shapes(parts):
    layout = parts.session.layout(0)
    assert layer_options(layout) == [
        ("conv_a · 32×32×8", "conv_a"),
        ("pool_a · 16×16×8", "pool_a"),
        ("conv_b · 16×16×16", "conv_b"),
    ]
    assert parts.controls.layer.value == "conv_b" and list(parts.controls.scrub.options) == [
        "conv_a",
        "pool_a",
        "conv_b",
    ]


def test_classes_are_listed_by_score_and_set_quietly(parts):
    c = parts.controls
    seen = []
    c.class_.observe(lambda change: seen.append(c.syncing), "value")
    c.set_classes(["cat", "dog", "fox"], np.array([0.2, 0.7, 0.1]), None)
    assert [value for _, value in c.class_.options] == [1, 0, 2] and c.class_.value == 1  # the top one
    assert c.class_.options[0][0] == "dog · 0.70"
    assert c.versus.options[0] == ("the runner-up", -1) and c.versus.value == -1
    c.set_classes(["cat", "dog", "fox"], np.array([0.2, 0.7, 0.1]), 2)
    assert c.class_.value == 2 and seen and all(seen)  # every change made while syncing
    assert not c.syncing


def test_quietly_nests_and_restores(parts):
    c = parts.controls
    with c.quietly():
        with c.quietly():
            assert c.syncing
        assert c.syncing
    assert not c.syncing


@pytest.mark.parametrize(
    "mode, visible, hidden",
    [
        ("Overlay", ["overlay", "colorbar"], ["grid", "plain", "heat"]),
        ("Side by side", ["plain", "heat", "overlay"], ["grid", "colorbar"]),
        ("Compare methods", ["grid"], ["overlay", "plain", "colorbar"]),
    ],
)
def test_each_view_shows_its_panels(parts, mode, visible, hidden):
    c = parts.controls
    c.show_panels_for(mode)
    assert all(getattr(c, name).layout.display != "none" for name in visible)
    assert all(getattr(c, name).layout.display == "none" for name in hidden)


def test_a_colormap_not_in_the_menu_is_offered_in_the_menu_and_the_browsers_tables(parts):
    c = parts.controls
    assert "cividis" not in render.COLORMAPS
    c.offer_colormap("cividis")
    assert c.colormap.options[-1] == "cividis" and list(c.canvas.colormaps) == colormap_options("cividis")
    assert colormap_options("jet") == list(render.COLORMAPS)


def test_panels_enlarge_small_pictures_and_keep_large_ones_within_the_panel():
    assert panel_size((10, 20)) == (MIN_DISPLAY_WIDTH // 2, MIN_DISPLAY_WIDTH)
    h, w = panel_size((3000, 1000))
    assert h == PANEL_HEIGHT and w == round(1000 * PANEL_HEIGHT / 3000)
    h, w = panel_size((100, 4000))
    assert w == PANEL_WIDTH and h == round(100 * PANEL_WIDTH / 4000)
