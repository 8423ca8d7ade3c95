"""The explorer says what is true about itself: a model's note (a random-weights stand-in) in the status line
and in every figure's title, a compare grid that stays visible at Opacity 0, and views that do not apply left
out of the menu rather than chosen and refused."""

from __future__ import annotations

import matplotlib.text
import models
import numpy as np
import pytest
from matplotlib.figure import Figure

import camwidget as cw
from camwidget import notes, render
from camwidget.explorer import compare


@pytest.fixture
def picture(rng):
    return rng.integers(0, 256, (40, 48, 3), dtype=np.uint8)


def titles(figure: Figure) -> str:
    return " ".join([figure._suptitle.get_text() if figure._suptitle else ""] + [ax.get_title() for ax in figure.axes])


def test_a_stand_in_is_announced_in_the_status_line_and_every_figure(picture):
    model = models.small_cnn(name="stand_in")
    notes.mark(model)  # what camwidget.demo.load_pretrained does when the weights cannot be had
    ex = cw.CAMExplorer(model, picture, background=False)
    try:
        assert notes.STAND_IN in ex.status_text
        assert notes.STAND_IN in titles(ex.compare("methods"))
        assert notes.STAND_IN in ex.check().title
    finally:
        ex.close()


def test_any_model_can_be_given_a_note_and_a_plain_one_says_nothing(picture):
    model = models.small_cnn(name="noted")
    ex = cw.CAMExplorer(model, picture, background=False, note="trained 2 epochs on 40 pictures")
    plain = cw.CAMExplorer(model, picture, background=False)
    try:
        assert "trained 2 epochs on 40 pictures" in ex.status_text
        assert "trained 2 epochs" in titles(ex.compare("layers"))
        assert notes.STAND_IN not in plain.status_text and "(" not in titles(plain.compare("methods")).split(":")[0]
    finally:
        ex.close()
        plain.close()
    with pytest.raises(TypeError, match="note must be a string"):
        cw.CAMExplorer(model, picture, background=False, note=3)


def test_a_compare_grid_keeps_its_maps_visible_at_opacity_zero(rng):
    pixels = rng.integers(0, 256, (30, 30, 3), dtype=np.uint8)
    cam = rng.random((6, 6)).astype(np.float32)
    cells = [compare.Cell("a", cam), compare.Cell("b", cam[::-1])]
    at_zero = compare.figure_png(compare.figure(pixels, cells, "jet", 0.0, "t", width_px=400))
    at_floor = compare.figure_png(compare.figure(pixels, cells, "jet", render.GRID_MIN_ALPHA, "t", width_px=400))
    faint = compare.figure_png(compare.figure(pixels, cells, "jet", 0.1, "t", width_px=400))
    assert at_zero == at_floor == faint  # below the floor, the grid is drawn at the floor
    assert render.grid_alpha(0.8) == 0.8 and render.grid_alpha(0.0) == render.GRID_MIN_ALPHA


def _smallest_text_on_screen(figure: Figure, shown_px: float) -> float:
    """The smallest text height (px) in `figure` once the notebook shows it `shown_px` wide."""
    scale = shown_px / (figure.get_figwidth() * figure.dpi)
    sizes = [t.get_fontsize() for t in figure.findobj(matplotlib.text.Text) if t.get_text()]
    assert sizes, "the figure has no text"
    return min(sizes) * figure.dpi / 72 * scale


def test_grid_and_check_text_stays_legible_in_a_narrow_cell(rng, picture):
    """At 900 px with the file browser open a cell's output is about 470 px wide: the 800 px grids are shown
    shrunk to it, and every title, label and tick must still be at least render.LEGIBLE_PX tall."""
    cam = rng.random((6, 6)).astype(np.float32)
    cells = [compare.Cell(f"a long cell title {i} at conv_b", cam) for i in range(6)]
    grid = compare.figure(picture, cells, "jet", 0.5, "image 0: compare methods", width_px=800)
    assert _smallest_text_on_screen(grid, render.NARROW_OUTPUT_PX) >= render.LEGIBLE_PX - 1e-6
    model = models.small_cnn(name="legible")
    ex = cw.CAMExplorer(model, picture, background=False)
    try:
        check = ex.check(randomize=True).figure(width_px=800)
        assert _smallest_text_on_screen(check, render.NARROW_OUTPUT_PX) >= render.LEGIBLE_PX - 1e-6
    finally:
        ex.close()
    old = 7 * 100 / 72 * render.NARROW_OUTPUT_PX / 800  # the 7 pt ticks these figures had: 5.7 px, too small
    assert old < render.LEGIBLE_PX


def test_the_method_menu_groups_by_family_and_its_tooltip_says_the_cost(picture):
    ex = cw.CAMExplorer(models.small_cnn(name="menu"), picture, background=False)
    try:
        labels = [label for label, _ in ex.controls["method"].options]
        families = [label.split(":")[0] for label in labels]
        assert families == sorted(families, key=families.index)  # each family's methods together
        assert "gradient: Grad-CAM" in labels and "perturbation: Score-CAM" in labels
        assert ex.controls["method"].tooltip == "Grad-CAM: gradient method; one map costs 1 pass"
        ex.method = "scorecam"
        assert ex.controls["method"].tooltip.startswith("Score-CAM: perturbation method; one map costs 1 pass per")
    finally:
        ex.close()


def test_the_score_menu_offers_every_score_compute_cam_takes(picture):
    from camwidget.engines import SCORES

    model = models.small_cnn(name="scores")
    ex = cw.CAMExplorer(model, picture, background=False)
    try:
        assert [value for _, value in ex.controls["score"].options] == list(SCORES)
        ex.score = "rest"
        expected = cw.compute_cam(model, ex.model_input, class_index=ex.class_index, score="rest")[0]
        np.testing.assert_allclose(ex.cam, expected, atol=1e-5)
    finally:
        ex.close()


def test_the_concepts_view_shows_the_layers_concepts_for_the_picture(picture):
    """View "Concepts": cw.concepts of the shown layer for the shown picture, one grid cell per concept, each
    the concept's map as cw.concepts computes it, titled with the classes it raises."""
    model = models.small_cnn(name="concepts")
    ex = cw.CAMExplorer(model, picture, background=False)
    try:
        ex.controls["mode"].value = "Concepts"
        ex._flush()
        cells = ex._screen.cells
        top = [p.class_index for p in ex.predictions]  # the picture's top 5 classes, as the view weighs them
        found = cw.concepts(model, ex.model_input, len(cells), ex.layer, classes=top)
        assert len(cells) == 4 and all(cell.title.startswith(f"concept {j + 1}: ") for j, cell in enumerate(cells))
        for j, cell in enumerate(cells):
            np.testing.assert_allclose(cell.cam, found.normalised_maps()[0, j], atol=1e-5)
        assert "✖" not in ex.status_text
    finally:
        ex.close()


def test_a_stand_in_trained_since_is_no_longer_called_random(picture):
    model = models.small_cnn(name="trained_stand_in")
    notes.mark(model)
    ex = cw.CAMExplorer(model, picture, background=False)
    try:
        assert notes.STAND_IN in ex.status_text
        model.set_weights([w * 1.5 for w in model.get_weights()])  # as fit() or load_weights() would change them
        ex.layer = ex.layer  # any view: the explorer looks at the model as it is now
        assert notes.STAND_IN not in ex.status_text and "weights have changed since" in ex.status_text
    finally:
        ex.close()
