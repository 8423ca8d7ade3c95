"""Bad input gets a clear ValueError / TypeError naming the problem and what would be right."""

from __future__ import annotations

import keras
import models
import numpy as np
import pytest

import camwidget as cw


@pytest.fixture(scope="module")
def question():
    return models.question_head(size=160)


def x32(n=1):
    return np.random.default_rng(0).uniform(0, 1, (n, 32, 32, 3)).astype("float32")


@pytest.fixture(scope="module")
def flat():
    return models.flat_head_cnn()  # conv_a, pool_a, conv_b, conv_c, flat, dense


@pytest.mark.parametrize(
    "model, size, layer, message",
    [
        ("flat", 32, "conv_cc", r"layer 'conv_cc' not found; closest: 'conv_c'"),
        ("composite_b", 64, "vgg16/block5_cnv3", r"closest: 'vgg16/block5_conv3'"),  # a nested layer: its path
    ],
)
def test_unknown_layer_suggests_closest(model, size, layer, message, request):
    with pytest.raises(ValueError, match=message):
        cw.compute_cam(request.getfixturevalue(model), np.zeros((1, size, size, 3), np.float32), layer=layer)


def test_dense_layer_is_not_spatial(flat):
    with pytest.raises(ValueError, match=r"'dense' has output shape \(N, 3\), not a spatial map.*'conv_c'"):
        cw.compute_cam(flat, x32(), layer="dense")


def test_1x1_pooled_map_is_refused(question):
    with pytest.raises(ValueError, match=r"'avg5' has a 1x1 output"):
        cw.compute_cam(question, np.zeros((1, 160, 160, 3), np.float32), layer="avg5")


@pytest.mark.parametrize(
    "bad, message", [(3, "out of range: the model's output has 3 classes"), (-1, "negative"), ([0, 5], "out of range")]
)
def test_class_index_out_of_range(small, bad, message):
    with pytest.raises(ValueError, match=message):
        cw.compute_cam(small, x32(2), class_index=bad)


@pytest.mark.parametrize("bad", ["cat", 1.5, True, [0]])
def test_class_index_wrong_type_or_count(small, bad):
    with pytest.raises((TypeError, ValueError), match="class_index"):
        cw.compute_cam(small, x32(2), class_index=bad)


@pytest.mark.parametrize(
    "images, message",
    [
        (np.zeros((32, 32), np.float32), r"shape \(32, 32\); expected \(N, height, width, channels\)"),
        (np.zeros((1, 1, 32, 32, 3), np.float32), "expected"),
        (np.zeros((1, 32, 32, 1), np.float32), "channels 1, but the model takes 3"),
        (np.zeros((1, 40, 32, 3), np.float32), "height 40, but the model takes 32.*resize"),
        (np.zeros((0, 32, 32, 3), np.float32), "empty"),
        (np.array([["a"]]), "dtype"),
    ],
)
def test_images_of_wrong_shape(small, images, message):
    with pytest.raises(ValueError, match=message):
        cw.compute_cam(small, images)


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_nan_or_inf_in_images(small, value):
    x = x32()
    x[0, 3, 4, 1] = value
    with pytest.raises(ValueError, match="NaN or infinite"):
        cw.compute_cam(small, x)


def test_images_wrong_type(small):
    with pytest.raises(TypeError, match="numpy array"):
        cw.compute_cam(small, {"cat": 1})
    with pytest.raises(FileNotFoundError, match="cat.jpg"):  # paths are read, so a missing one says so
        cw.compute_cam(small, "cat.jpg")


def test_model_with_no_spatial_layer():
    inp = keras.Input((8, 8, 3))
    model = keras.Model(inp, keras.layers.Dense(2, activation="softmax")(keras.layers.Flatten()(inp)))
    with pytest.raises(ValueError, match="no layer with a spatial"):
        cw.compute_cam(model, np.zeros((1, 8, 8, 3), np.float32))
    assert cw.spatial_layers(model) == []


def test_layer_called_twice_is_ambiguous():
    inp = keras.Input((16, 16, 3))
    first = keras.layers.Conv2D(8, 3, padding="same", name="first")(inp)
    shared = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="shared")
    x = shared(shared(first))
    model = keras.Model(inp, keras.layers.Dense(2, activation="softmax")(keras.layers.GlobalAveragePooling2D()(x)))
    x16 = np.zeros((1, 16, 16, 3), np.float32)
    with pytest.raises(ValueError, match="'shared' is called 2 times in one forward pass"):
        cw.compute_cam(model, x16, layer="shared")
    assert "shared" not in cw.spatial_layers(model)
    assert cw.default_layer(model) == "first"


def test_not_a_keras_model():
    with pytest.raises(TypeError, match="Keras 3 model"):
        cw.compute_cam(lambda x: x, np.zeros((1, 8, 8, 3)))


def test_unknown_method_and_score(small):
    with pytest.raises(ValueError, match="method 'gradcm' is not known; did you mean 'gradcam'"):
        cw.compute_cam(small, x32(), method="gradcm")
    with pytest.raises(ValueError, match="score must be one of"):
        cw.compute_cam(small, x32(), score="logit")


def test_layer_not_a_string(small):
    with pytest.raises(TypeError, match="layer must be a layer name"):
        cw.compute_cam(small, x32(), layer=3)


def test_output_that_is_not_class_scores():
    """A detector's (N, boxes, 4 + classes) is neither one score per class nor per pixel: target= says how."""
    inp = keras.Input((16, 16, 3))
    x = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(4, 3, padding="same")(inp))
    model = keras.Model(inp, keras.layers.Reshape((5, 6))(keras.layers.Dense(30)(x)))
    with pytest.raises(ValueError, match=r"shape \(N, 5, 6\).*one score per class.*give target="):
        cw.compute_cam(model, np.zeros((1, 16, 16, 3), np.float32))


def test_nested_model_named_as_a_layer_points_to_its_layers(composite_b):
    with pytest.raises(ValueError, match=r"'vgg16' is a nested model.*'vgg16/block5_conv3'"):
        cw.compute_cam(composite_b, np.zeros((1, 64, 64, 3), np.float32), layer="vgg16")


def test_unknown_colormap_message_reads_well(small):
    ex = cw.CAMExplorer(small, np.zeros((8, 8, 3), np.uint8))
    with pytest.raises(ValueError, match=r"'nope' is not a matplotlib colormap[;.].* Common ones: 'jet', .*'gray'$"):
        ex.colormap = "nope"
    with pytest.raises(ValueError, match=r"'viridiss' is not a matplotlib colormap; did you mean 'viridis'"):
        ex.colormap = "viridiss"
    ex.close()
