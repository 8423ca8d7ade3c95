"""Targets: maps of any score of the output (a regression unit, a segmentation region, a detection box, any
function), each checked against a hand-split GradientTape written here."""

from __future__ import annotations

import keras
import models
import numpy as np
import pytest
import tensorflow as tf
from hypothesis import given
from hypothesis import strategies as st
from keras import layers

import camwidget as cw
from camwidget.errors import CAMError
from camwidget.targets import Box, ClassScore, Region, Unit, check_class_index


def reference(model, x, layer, score_of):
    """Grad-CAM of score_of(tensor of the named output) at `layer`: w_k = mean dy/dA_k, ReLU(sum w_k A_k)."""
    probe = keras.Model(model.inputs, [model.get_layer(layer).output, model.get_layer(score_of[0]).output])
    with tf.GradientTape() as tape:
        acts, out = probe(tf.constant(x))
        y = score_of[1](out)
    grads = tape.gradient(y, acts).numpy()
    raw = (acts.numpy() * grads.mean(axis=(1, 2), keepdims=True)).sum(-1)
    positive = np.maximum(raw, 0)
    peak = positive.max(axis=(1, 2), keepdims=True)
    return np.divide(positive, peak, out=np.zeros_like(positive), where=peak > 0)


@pytest.fixture(scope="module")
def regression():
    keras.utils.set_random_seed(11)
    inp = keras.Input((24, 24, 3))
    x = layers.Conv2D(8, 3, padding="same", activation="relu", name="conv")(inp)
    out = layers.Dense(3, name="values")(layers.GlobalAveragePooling2D()(x))
    return keras.Model(inp, out)


@pytest.fixture(scope="module")
def segmenter():
    return models.segmenter(12)


@pytest.fixture(scope="module")
def detector():
    keras.utils.set_random_seed(13)
    inp = keras.Input((16, 16, 3))
    x = layers.Conv2D(8, 3, padding="same", activation="relu", name="conv")(inp)
    boxes = layers.Dense(5 * (4 + 2), name="head")(layers.GlobalAveragePooling2D()(x))
    return keras.Model(inp, layers.Reshape((5, 6), name="boxes")(boxes))


@pytest.fixture
def x(rng):
    return rng.uniform(0, 1, (3, 24, 24, 3)).astype("float32")


def test_one_unit_of_a_regression_output(regression, x):
    maps = cw.compute_cam(regression, x, layer="conv", target=Unit(1))
    np.testing.assert_allclose(maps, reference(regression, x, "conv", ("values", lambda y: y[:, 1])), atol=1e-3)
    np.testing.assert_allclose(maps, cw.compute_cam(regression, x, layer="conv", class_index=1), atol=1e-6)
    np.testing.assert_allclose(maps, cw.compute_cam(regression, x, layer="conv", target=ClassScore(1)), atol=1e-6)


def test_any_function_of_the_output(regression, x):
    maps = cw.compute_cam(regression, x, layer="conv", target=lambda y: y[:, 0] - 2.0 * y[:, 2], method="gradcam")
    expected = reference(regression, x, "conv", ("values", lambda y: y[:, 0] - 2.0 * y[:, 2]))
    np.testing.assert_allclose(maps, expected, atol=1e-3)
    assert cw.compute_cam(regression, x, layer="conv", target=Unit(0), method="layercam").shape == (3, 24, 24)


def test_a_region_of_a_segmentation_output_on_its_logits(segmenter, rng):
    x = rng.uniform(0, 1, (2, 16, 16, 3)).astype("float32")
    mask = np.zeros((16, 16), bool)
    mask[4:10, 2:8] = True
    maps = cw.compute_cam(segmenter, x, layer="conv", target=Region(2, mask))
    expected = reference(segmenter, x, "conv", ("logits", lambda y: tf.reduce_sum(y[..., 2] * mask, axis=(1, 2))))
    np.testing.assert_allclose(maps, expected, atol=1e-3)
    probability = cw.compute_cam(segmenter, x, layer="conv", target=Region(2, mask), score="probability")
    expected = reference(segmenter, x, "conv", ("probs", lambda y: tf.reduce_sum(y[..., 2] * mask, axis=(1, 2))))
    np.testing.assert_allclose(probability, expected, atol=1e-3)
    with pytest.raises(
        cw.CAMError, match=r"mask of its \(H, W\); the output is \(None, 16, 16, 3\) and the mask \(8, 8\)"
    ):
        cw.compute_cam(segmenter, x, layer="conv", target=Region(2, np.ones((8, 8))))


def test_aug_smooth_flips_a_regions_mask_with_the_picture(segmenter, rng):
    """aug_smooth explains flipped copies of the picture: a Region's mask must be flipped with them, else the
    flipped copies explain the mirror image of the region. Against the definition written out here: the mean of
    the normalised maps of each copy (flipped or not, x0.9, x1, x1.1) for its own mask, flipped back. HiResCAM
    (each position's gradient times activation), since Grad-CAM's averaged gradients barely see where a region is."""
    x = rng.uniform(0, 1, (2, 16, 16, 3)).astype("float32")
    mask = np.zeros((16, 16), bool)
    mask[3:9, 1:6] = True  # on the left: its mirror image does not overlap it
    maps = cw.compute_cam(segmenter, x, layer="conv", target=Region(2, mask), aug_smooth=True, method="hirescam")
    probe = keras.Model(segmenter.inputs, [segmenter.get_layer("conv").output, segmenter.get_layer("logits").output])
    total = 0
    for flip in (False, True):
        for factor in (0.9, 1.0, 1.1):
            copy = (x[:, :, ::-1] if flip else x) * np.float32(factor)
            region = (mask[:, ::-1] if flip else mask).astype("float32")
            with tf.GradientTape() as tape:
                acts, logits = probe(tf.constant(copy))
                y = tf.reduce_sum(logits[..., 2] * region, axis=(1, 2))
            raw = np.maximum((tape.gradient(y, acts).numpy() * acts.numpy()).sum(-1), 0)
            peak = raw.max(axis=(1, 2), keepdims=True)
            m = np.divide(raw, peak, out=np.zeros_like(raw), where=peak > 0)  # an all-zero map stays zero
            total = total + (m[:, :, ::-1] if flip else m)
    peak = total.max(axis=(1, 2), keepdims=True)
    want = np.divide(total, peak, out=np.zeros_like(total), where=peak > 0)
    assert (peak > 0).all()  # something to compare
    np.testing.assert_allclose(maps, want, atol=1e-4)
    assert (maps[:, mask] > 0).sum() > 20 and (maps[:, ~mask] == 0).all()  # nothing from the mirror image
    flipped = Region(2, mask).flipped()
    assert flipped.class_index == 2 and np.array_equal(flipped.mask, mask[:, ::-1])


def test_a_segmentation_class_explains_the_pixels_predicted_as_that_class(segmenter, rng):
    """Without a target, class c of a per-pixel output is Region(c, the pixels the model predicts as c)
    (pytorch-grad-cam's segmentation recipe); the top "class" is the one covering most pixels."""
    x = rng.uniform(0, 1, (3, 16, 16, 3)).astype("float32")
    predicted = np.argmax(segmenter(x).numpy(), axis=-1)  # (N, 16, 16)
    for c in range(3):
        maps = cw.compute_cam(segmenter, x, layer="conv", class_index=c)
        for i in range(3):
            mask = predicted[i] == c
            want = reference(
                segmenter, x[i : i + 1], "conv", ("logits", lambda y, m=mask: tf.reduce_sum(y[..., c] * m, axis=(1, 2)))
            )
            np.testing.assert_allclose(maps[i : i + 1], want, atol=1e-3)
    top = [int(np.bincount(p.ravel(), minlength=3).argmax()) for p in predicted]
    np.testing.assert_allclose(
        cw.compute_cam(segmenter, x, layer="conv"),
        cw.compute_cam(segmenter, x, layer="conv", class_index=top),
        atol=1e-6,
    )


def test_one_box_of_a_detection_output(detector, rng):
    x = rng.uniform(0, 1, (2, 16, 16, 3)).astype("float32")
    maps = cw.compute_cam(detector, x, layer="conv", target=Box(3, 1))
    np.testing.assert_allclose(maps, reference(detector, x, "conv", ("boxes", lambda y: y[:, 3, 5])), atol=1e-3)


def test_bad_targets_say_what_they_returned(regression, x):
    with pytest.raises(cw.CAMError, match=r"returned shape \(None, 3\) .* one score per image, shape \(N,\)"):
        cw.compute_cam(regression, x, layer="conv", target=lambda y: y)
    with pytest.raises(cw.CAMError, match="returned nan for image 0 .and 2 more.; it must give a finite score"):
        cw.compute_cam(regression, x, layer="conv", target=lambda y: y[:, 0] * float("nan"))
    with pytest.raises(cw.CAMError, match="no gradient at layer 'conv': it must be differentiable"):
        cw.compute_cam(regression, x, layer="conv", target=lambda y: tf.cast(tf.argmax(y, axis=1), tf.float32))
    with pytest.raises(cw.CAMError, match="failed on the output .* uses keras.ops .or tensorflow's own. operations"):
        cw.compute_cam(regression, x, layer="conv", target=lambda y: np.asarray(y)[:, 0] + {})
    with pytest.raises(TypeError, match="target must be a function of the model's output"):
        cw.compute_cam(regression, x, layer="conv", target=3)
    with pytest.raises(cw.CAMError, match="give class_index or target, not both"):
        cw.compute_cam(regression, x, layer="conv", target=Unit(0), class_index=1)
    with pytest.raises(cw.CAMError, match="method 'scorecam' explains a class and cannot take target= yet"):
        cw.compute_cam(regression, x, layer="conv", target=Unit(0), method="scorecam")


def test_a_target_never_changes_the_model(regression, x):
    before = [w.copy() for w in regression.get_weights()]
    cw.compute_cam(regression, x, layer="conv", target=Unit(2), aug_smooth=True)
    for a, b in zip(before, regression.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_negative_indices_are_refused_by_every_target_never_read_as_another_unit():
    """A negative class or box would be counted from the end by Python's indexing, and Box(b, -1) would read the
    box's last coordinate: every target refuses one when it is made, naming the index and the rule."""
    made = {
        "ClassScore": lambda: ClassScore(-1),
        "Unit": lambda: Unit(-1),
        "Unit tuple": lambda: Unit((0, -2)),
        "Region": lambda: Region(-1, np.ones((16, 16), bool)),
        "Box box": lambda: Box(-1, 0),
        "Box class": lambda: Box(0, -1),
        "Box offset": lambda: Box(0, 0, offset=-4),
    }
    for _name, make in made.items():
        with pytest.raises(cw.CAMError, match=r"-\d is negative; indices count from 0 \(negative ones are refused"):
            make()
    with pytest.raises(cw.CAMError, match=r"Box: class_index must be a whole number from 0, not 1.5"):
        Box(0, 1.5)
    with pytest.raises(cw.CAMError, match=r"ClassScore: class_index must be a whole number from 0, not True"):
        ClassScore(True)
    assert Box(np.int64(2), np.int32(1)).class_index == 1  # NumPy's integers are whole numbers too


def test_targets_out_of_range_name_the_output(regression, segmenter, detector, x):
    x16 = x[:, :16, :16]
    with pytest.raises(cw.CAMError, match=r"Box: class_index 2 is out of range for the output \(None, 5, 6\): 0\.\.1"):
        cw.compute_cam(detector, x16, layer="conv", target=Box(0, 2))  # one past the last class
    with pytest.raises(cw.CAMError, match=r"Box: box 5 is out of range for the output \(None, 5, 6\): 0\.\.4"):
        cw.compute_cam(detector, x16, layer="conv", target=Box(5, 0))
    with pytest.raises(cw.CAMError, match=r"Region: class_index 3 is out of range .*: 0\.\.2"):
        cw.compute_cam(segmenter, x16, layer="conv", target=Region(3, np.ones((16, 16), bool)))
    with pytest.raises(cw.CAMError, match=r"Unit: index 3 is out of range for the output \(None, 3\): 0\.\.2"):
        cw.compute_cam(regression, x, layer="conv", target=Unit(3))
    with pytest.raises(cw.CAMError, match=r"ClassScore: class_index 3 is out of range"):
        cw.compute_cam(regression, x, layer="conv", target=ClassScore(3))
    with pytest.raises(cw.CAMError, match=r"Unit\(0, 1\): 2 indices for an output \(None, 3\) of 1 axes"):
        cw.compute_cam(regression, x, layer="conv", target=Unit((0, 1)))


@given(st.integers(1, 2000), st.integers(-5000, 5000))
def test_a_class_number_is_kept_within_range_and_refused_outside(n_classes, value):
    for given_ in (value, np.int64(value)):
        if 0 <= value < n_classes:
            kept = check_class_index(given_, n_classes)
            assert kept == value and type(kept) is int
        elif value < 0:
            with pytest.raises(CAMError, match=f"class_index {value} is negative; classes are numbered 0.."):
                check_class_index(given_, n_classes)
        else:
            with pytest.raises(CAMError, match=f"class_index {value} is out of range: the model's output has"):
                check_class_index(given_, n_classes)


@pytest.mark.parametrize("value", [True, np.bool_(False), 1.0, "1", None, [1]])
def test_a_class_number_that_is_not_a_whole_number_is_refused(value):
    with pytest.raises(
        TypeError, match=f"versus must be an int \\(or None for the top class\\), not {type(value).__name__}"
    ):
        check_class_index(value, 3, "versus")
