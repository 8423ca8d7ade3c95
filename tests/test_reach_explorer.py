"""The explorer on what is not a photo: a signal, a clip, a vision transformer, a model of two inputs. Each map
equals compute_cam on the same input (itself checked against hand splits in test_reach.py)."""

from __future__ import annotations

import keras
import models
import numpy as np
import pytest
from keras import layers
from test_reach import tiny_vit

import camwidget as cw
from camwidget import render
from camwidget.inputs.samples import frame_slice, signal_picture


@pytest.fixture(scope="module")
def signal_model():
    keras.utils.set_random_seed(31)
    return models.signal_cnn(120, 1, second=8)


@pytest.fixture(scope="module")
def clip_model():
    keras.utils.set_random_seed(32)
    inp = keras.Input((6, 20, 20, 3))
    x = layers.TimeDistributed(layers.Conv2D(6, 3, padding="same", activation="relu"), name="frames")(inp)
    x = layers.Conv3D(8, 3, strides=2, padding="same", activation="relu", name="c3")(x)
    out = layers.Dense(3, activation="softmax", name="probs")(layers.GlobalAveragePooling3D()(x))
    return keras.Model(inp, out)


def signals(n=2, length=120):
    t = np.linspace(0, 1, length)
    return np.stack([np.sin(2 * np.pi * (3 + i) * t)[:, None] for i in range(n)]).astype(np.float32)


def test_signal_explorer_maps_equal_compute_cam_at_each_layer(signal_model):
    data = signals()
    ex = cw.CAMExplorer(signal_model, {"slow": data[0], "fast": data[1]}, background=False)
    try:
        for layer, length in (("conv_b", 60), ("conv_a", 120)):
            ex.layer = layer
            want = cw.compute_cam(signal_model, data[:1], layer=layer, class_index=ex.predictions[0].class_index)
            assert ex.cam.shape == (length,)
            np.testing.assert_allclose(ex.cam, want[0], atol=1e-5)
            assert f"at {layer} ({length})" in ex.status_text
        menu = [label for label, _ in ex.controls["image"].options]
        assert menu == ["0: slow (120 samples, 1 channel)", "1: fast (120 samples, 1 channel)"]  # not its drawing
        assert "Check map" not in ex.controls["mode"].options  # blurring a picture does not apply to a signal
        ex.image_index = 1
        assert ex.status_text.startswith("fast")
        np.testing.assert_allclose(ex.cam, cw.compute_cam(signal_model, data[1], layer="conv_a")[0], atol=1e-5)
    finally:
        ex.close()


def test_signal_is_drawn_as_a_line_over_the_map_band(signal_model):
    data = signals(1)
    ex = cw.CAMExplorer(signal_model, data[0], background=False, alpha=0.6)
    try:
        picture = signal_picture(data[0])
        assert np.array_equal(ex.pixels, picture)
        band = np.repeat(ex.cam[None, :], 2, axis=0)  # each column coloured by the map at that time
        np.testing.assert_array_equal(ex.overlay, render.overlay(picture, band, 0.6, "jet"))
        hot, cold = int(np.argmax(ex.cam)), int(np.argmin(ex.cam))
        x_hot, x_cold = [round((i + 0.5) * picture.shape[1] / len(ex.cam)) for i in (hot, cold)]
        assert not np.array_equal(ex.overlay[:, x_hot], ex.overlay[:, x_cold])  # the band varies along time
        named = {n: c.layout.display for n, c in ex.controls.items()}
        assert named["upload"] == "none" and named["frame"] == "none"  # pictures and frames do not apply
    finally:
        ex.close()


def test_signal_of_the_wrong_length_is_refused_in_words(signal_model):
    with pytest.raises(ValueError, match="the signal has length 100, but the model takes 120"):
        cw.CAMExplorer(signal_model, np.zeros((100, 1), np.float32), background=False)
    with pytest.raises(ValueError, match=r"has shape \(2, 3, 4\); a signal is \(length, channels\)"):
        cw.CAMExplorer(signal_model, [np.zeros((2, 3, 4))], background=False)


def test_clip_explorer_has_a_frame_slider_over_the_map_slices(clip_model):
    rng = np.random.default_rng(3)
    clip = (rng.random((6, 20, 20, 3)) * 255).astype(np.uint8)
    ex = cw.CAMExplorer(clip_model, clip, background=False, alpha=0.5)
    try:
        x = ex.model_input
        assert x.shape == (1, 6, 20, 20, 3)
        want = cw.compute_cam(clip_model, x, class_index=ex.predictions[0].class_index)[0]
        assert ex.cam.shape == (3, 10, 10)
        np.testing.assert_allclose(ex.cam, want, atol=1e-5)
        control = ex.controls["frame"]
        assert control.max == 5 and control.layout.display is None
        assert ex.controls["image"].options[0][0].endswith("(6 frames of 20×20)")
        for frame in (0, 3, 5):
            ex.frame = frame
            np.testing.assert_array_equal(ex.pixels, clip[frame])
            shown = want[frame_slice(frame, 6, 3)]
            np.testing.assert_allclose(ex.overlay, render.overlay(clip[frame], shown, 0.5, "jet"), atol=1)
            assert f"frame {frame} of 0-5" in ex.status_text
        with pytest.raises(ValueError, match=r"frame must be an int from 0 to 5"):
            ex.frame = 6
        assert ex.frame == 5
    finally:
        ex.close()


def test_a_list_of_frames_is_one_clip_and_a_wrong_count_is_refused(clip_model):
    frames = [np.full((20, 20, 3), 40 * t, np.uint8) for t in range(6)]
    ex = cw.CAMExplorer(clip_model, frames, background=False)
    try:
        assert len(ex._session.pixels) == 1 and ex._session.frames(0) == 6
    finally:
        ex.close()
    with pytest.raises(ValueError, match="the clip has 4 frames, but the model takes 6"):
        cw.CAMExplorer(clip_model, frames[:4], background=False)


def test_vit_explorer_draws_the_patch_grid():
    vit = tiny_vit()
    picture = (np.random.default_rng(4).random((64, 96, 3)) * 255).astype(np.uint8)
    ex = cw.CAMExplorer(vit, picture, background=False, preprocess="none")
    try:
        assert ex.layer == "block1_norm1"
        want = cw.compute_cam(vit, ex.model_input, class_index=ex.predictions[0].class_index)[0]
        assert ex.cam.shape == (4, 6)
        np.testing.assert_allclose(ex.cam, want, atol=1e-5)
        assert ex.overlay.shape == (64, 96, 3)
    finally:
        ex.close()


def test_vit_explorer_takes_grid_and_leading_tokens_as_compute_cam_does():
    vit = tiny_vit()
    picture = (np.random.default_rng(4).random((32, 48, 3)) * 255).astype(np.uint8)
    with pytest.raises(ValueError, match=r"grid \(6, 4\) is the picture's aspect turned on its side.*grid=\(4, 6\)"):
        cw.CAMExplorer(vit, picture, background=False, preprocess="none", grid=(6, 4))
    ex = cw.CAMExplorer(vit, picture, background=False, preprocess="none", grid=(6, 4), leading_tokens=1)
    try:
        want = cw.compute_cam(vit, ex.model_input, layer="block1_norm1", grid=(6, 4), leading_tokens=1, class_index=2)
        ex.class_index = 2
        assert ex.cam.shape == (6, 4)
        np.testing.assert_allclose(ex.cam, want[0], atol=1e-5)
        ex.layer = "block0_add2"  # every token layer is read on the grid given
        want = cw.compute_cam(vit, ex.model_input, layer="block0_add2", grid=(6, 4), leading_tokens=1, class_index=2)
        np.testing.assert_allclose(ex.cam, want[0], atol=1e-5)
    finally:
        ex.close()


def test_explorer_on_a_model_of_two_inputs():
    keras.utils.set_random_seed(33)
    image = keras.Input((16, 16, 3), name="image")
    meta = keras.Input((4,), name="meta")
    x = layers.GlobalAveragePooling2D()(layers.Conv2D(6, 3, padding="same", activation="relu", name="conv")(image))
    x = layers.Multiply()([x, layers.Dense(6, activation="sigmoid")(meta)])
    model = keras.Model([image, meta], layers.Dense(3, activation="softmax")(x))
    picture = (np.random.default_rng(5).random((16, 16, 3)) * 255).astype(np.uint8)
    values = np.random.default_rng(6).normal(size=4).astype(np.float32) * 3
    ex = cw.CAMExplorer(model, picture, input="image", other_inputs={"meta": values}, background=False)
    try:
        want = cw.compute_cam(
            model,
            ex.model_input,
            input="image",
            other_inputs={"meta": values},
            class_index=ex.predictions[0].class_index,
        )
        np.testing.assert_allclose(ex.cam, want[0], atol=1e-5)
        ex.class_index = 2  # a class change (no after-layer pass with several inputs: a full pass)
        want = cw.compute_cam(model, ex.model_input, input="image", other_inputs={"meta": values}, class_index=2)
        np.testing.assert_allclose(ex.cam, want[0], atol=1e-5)
        check = ex.check()  # the other inputs go with the picture, as in the view
        want = cw.metrics.deletion(
            model, ex.model_input, ex.cam[None], class_index=2, steps=50, input="image", other_inputs={"meta": values}
        )
        np.testing.assert_allclose(check.deletion.scores, want.scores, atol=1e-6)
    finally:
        ex.close()
    with pytest.raises(ValueError, match=r"the model has 2 inputs \('image', 'meta'\)"):
        cw.CAMExplorer(model, picture, background=False)
    with pytest.raises(ValueError, match="the explorer gives every image the same other inputs"):
        cw.CAMExplorer(model, picture, input="image", other_inputs={"meta": np.zeros((2, 4))}, background=False)


# -- what a map explains: segmentation classes and targets ------------------------------------------------------


@pytest.fixture(scope="module")
def segmenter():
    return models.segmenter(34)


def test_segmentation_explorer_classes_explain_their_predicted_pixels(segmenter):
    from camwidget.targets import Region

    picture = (np.random.default_rng(7).random((16, 16, 3)) * 255).astype(np.uint8)
    ex = cw.CAMExplorer(segmenter, picture, class_names=["sky", "road", "car"], preprocess="none", background=False)
    try:
        assert ex.layer == "conv"  # the output and its logits are what is explained, not layers to explain at
        predicted = np.argmax(segmenter(ex.model_input).numpy()[0], axis=-1)
        shares = np.bincount(predicted.ravel(), minlength=3) / predicted.size
        assert [p.class_index for p in ex.predictions] == list(np.argsort(-shares, kind="stable"))
        np.testing.assert_allclose([p.score for p in ex.predictions], np.sort(shares)[::-1])
        top = ex.predictions[0]
        assert f"Prediction: {top.name} · {top.score:.0%} of pixels" in ex.status_text
        for c in range(3):
            if not (predicted == c).any():
                continue
            ex.class_index = c
            want = cw.compute_cam(segmenter, ex.model_input, layer="conv", target=Region(c, predicted == c))
            np.testing.assert_allclose(ex.cam, want[0], atol=1e-5)
    finally:
        ex.close()


def test_explorer_explains_a_target(segmenter):
    from camwidget.targets import Region

    picture = (np.random.default_rng(8).random((16, 16, 3)) * 255).astype(np.uint8)
    mask = np.zeros((16, 16), bool)
    mask[2:9, 3:12] = True
    target = Region(1, mask)
    ex = cw.CAMExplorer(segmenter, picture, target=target, preprocess="none", background=False)
    try:
        np.testing.assert_allclose(
            ex.cam, cw.compute_cam(segmenter, ex.model_input, layer="conv", target=target)[0], atol=1e-5
        )
        assert "explaining target Region(class 1, mask 16×16, 63 pixels)" in ex.status_text
        assert "Prediction:" not in ex.status_text
        ex.method = "layercam"
        want = cw.compute_cam(segmenter, ex.model_input, layer="conv", target=target, method="layercam")
        np.testing.assert_allclose(ex.cam, want[0], atol=1e-5)
        with pytest.raises(ValueError, match="method 'scorecam' explains a class and cannot take target= yet"):
            ex.method = "scorecam"
        assert ex.method == "layercam"
        mode = ex.controls["mode"]
        for refused, words in (
            ("Compare classes", "comparing classes needs two of them"),
            ("Check map", "the map check scores a class's probability"),
        ):
            mode.value = refused
            ex._flush()
            assert words in ex.status_text and mode.value == "Overlay"
        mode.value = "Side by side"  # a change that works: the error line goes
        ex._flush()
        assert "✖" not in ex.status_text and "explaining target" in ex.status_text
    finally:
        ex.close()
