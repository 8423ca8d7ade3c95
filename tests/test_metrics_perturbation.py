"""camwidget.metrics.perturbation: deletion, insertion and the confidence scores, on a model whose class
probabilities are a formula of the image's mean colour (an identity 1x1 convolution, global average pooling,
a Dense softmax with weights set here), so each score is computed here in NumPy without running the model."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from keras import layers

from camwidget import metrics

H, W = 6, 8
KERNEL = np.array([[2.0, -1.0], [-1.5, 0.5], [0.5, 1.0]], np.float32)  # mean colour (3,) -> logits (2,)
BIAS = np.array([0.1, -0.2], np.float32)


@pytest.fixture(scope="module")
def colour_model():
    inp = keras.Input((H, W, 3))
    conv = layers.Conv2D(3, 1, use_bias=False, name="identity")
    dense = layers.Dense(2, activation="softmax", name="probs")
    model = keras.Model(inp, dense(layers.GlobalAveragePooling2D()(conv(inp))))
    conv.set_weights([np.eye(3, dtype=np.float32)[None, None]])
    dense.set_weights([KERNEL, BIAS])
    return model


def probability(images, c):
    """softmax(mean colour @ KERNEL + BIAS)[c], per image."""
    z = images.mean(axis=(1, 2)).astype(np.float64) @ KERNEL + BIAS
    p = np.exp(z - z.max(axis=1, keepdims=True))
    return (p / p.sum(axis=1, keepdims=True))[:, c]


@settings(max_examples=8, deadline=None)
@given(st.integers(1, 6), st.integers(0, 2**16))
def test_deletion_and_insertion_move_the_most_relevant_pixels_first(colour_model, steps, seed):
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 1, (2, H, W, 3)).astype("float32")
    maps = rng.permutation(2 * H * W).reshape(2, H, W).astype("float32")  # at the images' size, no ties
    deleted = metrics.deletion(colour_model, x, maps, steps=steps, baseline="zero", class_index=1)
    inserted = metrics.insertion(colour_model, x, maps, steps=steps, baseline="zero", class_index=1)
    fractions = np.array([int(np.floor(k * H * W / steps)) for k in range(steps + 1)]) / (H * W)
    np.testing.assert_allclose(deleted.fractions, fractions, atol=1e-6)
    for i in range(2):
        order = np.argsort(-maps[i].ravel())
        for k in range(steps + 1):
            moved = np.zeros(H * W, bool)
            moved[order[: int(np.floor(k * H * W / steps))]] = True
            moved = moved.reshape(H, W, 1)
            assert deleted.scores[i, k] == pytest.approx(probability((x[i] * ~moved)[None], 1)[0], abs=1e-5)
            assert inserted.scores[i, k] == pytest.approx(probability((x[i] * moved)[None], 1)[0], abs=1e-5)
    for curve in (deleted, inserted):
        want = [np.trapezoid(scores, fractions) for scores in curve.scores]
        np.testing.assert_allclose(curve.areas, want, atol=1e-6)
        assert curve.area == pytest.approx(np.mean(want), abs=1e-6)


def test_confidence_is_the_drop_and_rise_under_the_scaled_map(colour_model, rng):
    x = rng.uniform(0, 1, (4, H, W, 3)).astype("float32")
    maps = rng.normal(size=(4, H, W)).astype("float32")
    result = metrics.confidence(colour_model, x, maps, class_index=[0, 1, 0, 1])
    unit = np.maximum(maps, 0) / np.maximum(maps, 0).max(axis=(1, 2), keepdims=True)
    y = np.array([probability(x[i : i + 1], c)[0] for i, c in enumerate([0, 1, 0, 1])])
    o = np.array([probability(x[i : i + 1] * unit[i, ..., None], c)[0] for i, c in enumerate([0, 1, 0, 1])])
    np.testing.assert_allclose(result.original, y, atol=1e-5)
    np.testing.assert_allclose(result.explained, o, atol=1e-5)
    assert result.average_drop == pytest.approx(100 * np.mean(np.maximum(0, y - o) / y), abs=1e-3)
    assert result.increase_in_confidence == pytest.approx(100 * np.mean(o > y))


def test_the_curves_share_one_set_of_options_and_name_them_when_one_is_unknown(colour_model, rng):
    """deletion and insertion take CurveOptions' keywords (defaults: steps 100, the mean colour); a misspelt one
    is a TypeError naming it and every option there is, before any work."""
    x = rng.uniform(0, 1, (1, H, W, 3)).astype("float32")
    maps = rng.permutation(H * W).reshape(1, H, W).astype("float32")
    default = metrics.deletion(colour_model, x, maps, class_index=0)
    assert default.scores.shape == (1, 101)
    explicit = metrics.deletion(colour_model, x, maps, class_index=0, steps=100, baseline="mean")
    np.testing.assert_array_equal(default.scores, explicit.scores)
    for curve in (metrics.deletion, metrics.insertion):
        with pytest.raises(TypeError, match=r"got unknown option\(s\) stpes; it takes class_index, steps, baseline"):
            curve(colour_model, x, maps, stpes=5)
    assert set(metrics.CurveOptions.__annotations__) == {
        "class_index",
        "steps",
        "baseline",
        "output",
        "input",
        "other_inputs",
    }
