"""Compare at a glance: methods, a depth strip of layers, and "why A rather than B", from code and from the
explorer's View control."""

from __future__ import annotations

import keras
import models
import numpy as np
import pytest
import tensorflow as tf
from matplotlib.figure import Figure

import camwidget as cw
from camwidget.explorer import compare
from camwidget.explorer.compare import Question, depth_strip


@pytest.fixture(scope="module")
def linear():
    keras.utils.set_random_seed(5)
    return models.small_cnn(n_classes=4, final="linear", name="linear_head")


@pytest.fixture
def picture(rng):
    return rng.integers(0, 256, (48, 40, 3), dtype=np.uint8)


def reference_contrast(model, x, layer, a, b):
    """Grad-CAM of y_a - y_b at `layer`, with a GradientTape: the formula, written out."""
    probe = keras.Model(model.inputs, [model.get_layer(layer).output, model.output])
    with tf.GradientTape() as tape:
        acts, y = probe(tf.constant(x))
        difference = y[:, a] - y[:, b]
    grads = tape.gradient(difference, acts).numpy()
    raw = (acts.numpy() * grads.mean(axis=(1, 2), keepdims=True)).sum(-1)[0]
    positive = np.maximum(raw, 0)
    return positive / positive.max() if positive.max() > 0 else positive


def test_depth_strip_spans_first_to_last_and_keeps_the_current_layer():
    paths = [f"l{i}" for i in range(20)]
    strip = depth_strip(paths, "l7")
    assert len(strip) == 6 and strip[0] == "l0" and strip[-1] == "l19" and "l7" in strip
    assert strip == sorted(strip, key=paths.index)
    assert depth_strip(paths[:4], "l2") == paths[:4]


def test_why_a_rather_than_b_is_the_grad_cam_of_the_score_difference(linear, picture):
    ex = cw.CAMExplorer(linear, picture)
    probs = ex.session.probabilities(0)
    a, b = int(np.argsort(-probs)[0]), int(np.argsort(-probs)[1])
    cells = compare.cells_for(ex.session, Question(0, "conv_b", None, "gradcam", kind="classes"))
    names = ex.class_names
    assert [c.title.split("\n")[0] for c in cells] == [
        f"{names[a]} (Grad-CAM)",
        f"{names[b]} (Grad-CAM)",
        f"why {names[a]} rather than {names[b]}",
    ]
    expected = reference_contrast(linear, ex.model_input, "conv_b", a, b)
    np.testing.assert_allclose(cells[2].cam, expected, atol=1e-5)
    assert not np.allclose(cells[2].cam, cells[0].cam, atol=1e-3)  # not just A's map
    chosen = compare.cells_for(
        ex.session, Question(0, "conv_a", a, "gradcam", kind="classes", versus=3 if a != 3 else 0)
    )
    versus = 3 if a != 3 else 0
    np.testing.assert_allclose(
        chosen[2].cam, reference_contrast(linear, ex.model_input, "conv_a", a, versus), atol=1e-5
    )
    ex.close()


def test_compare_methods_from_code_returns_a_labelled_figure(linear, picture):
    ex = cw.CAMExplorer(linear, picture)
    fig = ex.compare("methods")
    assert isinstance(fig, Figure)
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert titles == ["Grad-CAM", "Grad-CAM++", "HiResCAM", "XGrad-CAM", "Layer-CAM", "Eigen-CAM"]
    cells = compare.cells_for(ex.session, Question(0, ex.layer, ex.class_index, ex.method, kind="methods"))
    for cell, method in zip(cells, compare.DEFAULT_METHODS):
        expected = cw.compute_cam(linear, ex.model_input, layer=ex.layer, class_index=ex.class_index, method=method)[0]
        np.testing.assert_allclose(cell.cam, expected, atol=1e-5, err_msg=method)
    layers = ex.compare("layers")
    assert [ax.get_title() for ax in layers.axes if ax.get_title()] == [
        "conv_a (32×32)",
        "pool_a (16×16)",
        "conv_b (16×16)",
    ]
    with pytest.raises(cw.CAMError, match="compare kind must be one of 'methods', 'layers', 'classes'"):
        ex.compare("everything")
    ex.close()


def test_the_view_control_switches_to_a_grid_and_back(linear, picture):
    ex = cw.CAMExplorer(linear, picture)
    calls = ex.session.model_calls
    ex.controls["mode"].value = "Compare methods"
    assert ex.controls["grid"].layout.display == "block" and ex.controls["overlay"].layout.display == "none"
    grid = bytes(ex.controls["grid"].value)
    assert grid.startswith(b"\x89PNG") and ex.session.model_calls == calls  # from the view's own capture
    ex.colormap = "viridis"
    assert bytes(ex.controls["grid"].value) != grid  # the grid is recoloured too
    ex.controls["mode"].value = "Compare classes"
    assert ex.controls["versus"].layout.display == "flex"
    ex.controls["versus"].value = ex.controls["versus"].options[-1][1]
    assert "rather than" in ex._screen.cells[2].title
    ex.controls["mode"].value = "Overlay"
    assert ex.controls["grid"].layout.display == "none" and ex.controls["colorbar"].layout.display == "inline-block"
    ex.close()


def test_depth_slider_moves_through_the_spatial_layers(linear, picture):
    ex = cw.CAMExplorer(linear, picture)
    depth = ex.controls["depth"]
    assert list(depth.options) == ["conv_a", "pool_a", "conv_b"] and depth.value == "conv_b"
    depth.value = "conv_a"
    assert ex.layer == "conv_a" and "at conv_a" in ex.status_text
    ex.layer = "conv_b"
    assert depth.value == "conv_b"
    ex.close()
