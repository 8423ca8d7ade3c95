"""compute_cam equals Grad-CAM by the formula, on every kind of model people have (within 1e-3)."""

from __future__ import annotations

import keras
import models
import numpy as np
import pytest
from reference import chain, dense_logits, reference_gradcam

import camwidget as cw

TOL = 1e-3


def images(rng, n, size):
    return rng.uniform(0, 1, (n, size, size, 3)).astype("float32")


def assert_matches(cam, ref):
    assert cam.shape == ref.shape
    assert ref.max() > 0, "reference map is all zero: the comparison would prove nothing"
    np.testing.assert_allclose(cam, ref, atol=TOL)


def assert_exact(model, x, features, logits, classes, **kwargs):
    """The raw signed map (normalize=False) equals the reference's, and so does the normalised one: with
    random weights the ReLU of a map can be all zero (it depends on the backend's initialiser), its signed
    sum is not."""
    cam = cw.compute_cam(model, x, class_index=classes, normalize=False, **kwargs)  # first: it may build the model
    raw = reference_gradcam(features, logits, x, classes, normalize=False)
    assert np.abs(raw).max() > 0, "reference map is all zero: the comparison would prove nothing"
    np.testing.assert_allclose(cam, raw, atol=TOL * np.abs(raw).max())
    cam = cw.compute_cam(model, x, class_index=classes, **kwargs)
    np.testing.assert_allclose(cam, reference_gradcam(features, logits, x, classes), atol=TOL)


def sub_model(model, layer_name):
    return keras.Model(model.input, model.get_layer(layer_name).output)


def test_vgg16_default_layer_and_exact(vgg16, rng):
    x = images(rng, 2, 224) * 255 - 120
    assert cw.default_layer(vgg16) == "block5_conv3"
    L = vgg16.get_layer
    ref = reference_gradcam(
        sub_model(vgg16, "block5_conv3"),
        chain(L("block5_pool"), L("flatten"), L("fc1"), L("fc2"), lambda h: dense_logits(L("predictions"), h)),
        x,
        [3, 997],
    )
    assert_matches(cw.compute_cam(vgg16, x, class_index=[3, 997]), ref)


def test_resnet50_default_layer_and_exact(rng):
    model = keras.applications.ResNet50(weights=None, input_shape=(64, 64, 3), classes=7)
    assert cw.default_layer(model) == "conv5_block3_out"
    x = images(rng, 2, 64)
    L = model.get_layer
    ref = reference_gradcam(
        sub_model(model, "conv5_block3_out"),
        chain(L("avg_pool"), lambda h: dense_logits(L("predictions"), h)),
        x,
        [0, 6],
    )
    assert_matches(cw.compute_cam(model, x, class_index=[0, 6]), ref)


def test_mobilenetv2_default_layer_and_exact(rng):
    model = keras.applications.MobileNetV2(weights=None, input_shape=(96, 96, 3), classes=5)
    assert cw.default_layer(model) == "out_relu"
    x = images(rng, 2, 96) * 2 - 1
    gap, dense = model.layers[-2], model.layers[-1]
    ref = reference_gradcam(sub_model(model, "out_relu"), chain(gap, lambda h: dense_logits(dense, h)), x, [4, 1])
    assert_matches(cw.compute_cam(model, x, class_index=[4, 1]), ref)


def test_composite_input_tensor(composite_a, rng):
    """(a) VGG16(include_top=False, input_tensor=inp) + Sequential head: VGG layers top level, head nested."""
    m, x = composite_a, images(rng, 2, 64) * 255
    head = m.get_layer("head")
    H = head.get_layer
    logits = chain(H("head_gap"), lambda h: dense_logits(H("head_dense"), h))
    assert cw.default_layer(m) == "head/head_conv"
    assert {"block5_conv3", "head/head_conv"} <= set(cw.spatial_layers(m))
    assert_exact(m, x, chain(sub_model(m, "block5_pool"), H("head_conv")), logits, [2, 4], layer="head/head_conv")
    tail = chain(m.get_layer("block5_pool"), H("head_conv"), logits)
    assert_exact(m, x, sub_model(m, "block5_conv3"), tail, [1, 1], layer="block5_conv3")


def test_composite_nested(composite_b, rng):
    """(b) VGG16 used as a layer: Model(inp, head(vgg(inp))); layers inside both nested models work."""
    m, x = composite_b, images(rng, 2, 64) * 255
    vgg, head = m.get_layer("vgg16"), m.get_layer("head")
    H = head.get_layer
    logits = chain(H("head_gap"), lambda h: dense_logits(H("head_dense"), h))
    assert {"vgg16/block5_conv3", "head/head_conv"} <= set(cw.spatial_layers(m))
    features, tail = sub_model(vgg, "block5_conv3"), chain(vgg.get_layer("block5_pool"), H("head_conv"), logits)
    assert_exact(m, x, features, tail, [0, 3], layer="vgg16/block5_conv3")
    assert_exact(m, x, chain(vgg, H("head_conv")), logits, [0, 3], layer="head/head_conv")


def test_question_head_4d_dense(rng):
    """AveragePooling2D((5, 5)) then Dense on a 4-D tensor: output (N, 1, 1, C), squeezed to (N, C)."""
    m = models.question_head()
    assert m.output_shape == (None, 1, 1, 4)
    x = images(rng, 2, 160) * 255
    L = m.get_layer
    ref = reference_gradcam(
        sub_model(m, "block5_conv3"),
        chain(L("block5_pool"), L("avg5"), lambda h: dense_logits(L("dense_4d"), h)),
        x,
        [3, 0],
    )
    assert cw.default_layer(m) == "block5_conv3"
    assert_matches(cw.compute_cam(m, x, class_index=[3, 0]), ref)


def _small_reference(m, x, classes, dense="dense"):
    L = m.get_layer
    return reference_gradcam(sub_model(m, "conv_b"), chain(L("gap"), lambda h: dense_logits(L(dense), h)), x, classes)


@pytest.mark.parametrize("final", ["dense_softmax", "activation_softmax", "softmax_layer", "linear"])
def test_softmax_written_any_way_uses_logits(final, rng):
    m = models.small_cnn(final=final)
    x = images(rng, 3, 32)
    ref = _small_reference(m, x, [0, 1, 2])
    assert_matches(cw.compute_cam(m, x, class_index=[0, 1, 2]), ref)


def test_probability_score_differs_from_logits(rng):
    """score="probability" differentiates the softmax; it is not the logit map, so "auto" really used logits."""
    m = models.small_cnn(n_classes=3)
    x = images(rng, 2, 32)
    L = m.get_layer
    probs = reference_gradcam(sub_model(m, "conv_b"), chain(L("gap"), L("dense")), x, [0, 2])
    assert_matches(cw.compute_cam(m, x, class_index=[0, 2], score="probability"), probs)
    assert np.abs(cw.compute_cam(m, x, class_index=[0, 2]) - probs).max() > 1e-2


def test_sigmoid_binary_is_two_classes(rng):
    m = models.small_cnn(final="sigmoid")
    x = images(rng, 2, 32)
    L = m.get_layer
    feats = sub_model(m, "conv_b")
    z = lambda A: dense_logits(L("dense"), L("gap")(A))  # noqa: E731
    pos = reference_gradcam(feats, z, x, [0, 0])
    neg = reference_gradcam(feats, lambda A: -z(A), x, [0, 0])
    assert_matches(cw.compute_cam(m, x, class_index=1), pos)
    assert_matches(cw.compute_cam(m, x, class_index=0), neg)
    with pytest.raises(ValueError, match="out of range"):
        cw.compute_cam(m, x, class_index=2)


def _sequential_split(m):
    L = m.get_layer
    return chain(L("s_conv_a"), L("s_pool"), L("s_conv_b")), chain(L("s_flat"), lambda h: dense_logits(L("s_dense"), h))


def test_sequential_with_input(rng):
    m = models.sequential_cnn()
    x = images(rng, 2, 32)
    assert cw.spatial_layers(m) == ["s_conv_a", "s_pool", "s_conv_b"]
    assert_exact(m, x, *_sequential_split(m), [1, 2])


def test_sequential_never_called_is_built_from_images(rng):
    m = models.sequential_cnn(with_input=False)
    assert not m.built
    x = images(rng, 2, 32)
    assert_exact(m, x, *_sequential_split(m), [0, 2])


def test_sequential_saved_and_loaded(tmp_path, rng):
    m = models.sequential_cnn()
    m.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras")
    x = images(rng, 2, 32)
    assert_exact(loaded, x, *_sequential_split(loaded), [2, 0])
    np.testing.assert_allclose(
        cw.compute_cam(loaded, x, class_index=[2, 0]), cw.compute_cam(m, x, class_index=[2, 0]), atol=1e-5
    )


def test_subclassed_model(rng):
    m = models.SubclassedCNN()
    x = images(rng, 2, 32)
    m(x)
    assert cw.spatial_layers(m, x) == ["sub_conv_a", "sub_conv_b"]
    ref = reference_gradcam(chain(m.conv_a, m.conv_b), chain(m.gap, lambda h: dense_logits(m.dense, h)), x, [1, 0])
    assert_matches(cw.compute_cam(m, x, class_index=[1, 0]), ref)


def test_nested_three_deep(rng):
    m = models.nested_three_deep()
    x = images(rng, 2, 32)
    middle = m.get_layer("middle")
    inner = middle.get_layer("inner")
    assert cw.spatial_layers(m) == ["middle/inner/deep_conv", "middle/mid_conv"]
    logits = chain(m.get_layer("outer_gap"), lambda h: dense_logits(m.get_layer("outer_dense"), h))
    ref = reference_gradcam(inner, chain(middle.get_layer("mid_conv"), logits), x, [2, 1])
    assert_matches(cw.compute_cam(m, x, layer="middle/inner/deep_conv", class_index=[2, 1]), ref)


def test_multi_output_by_name_and_index(rng):
    m = models.multi_output()
    x = images(rng, 2, 32)
    L = m.get_layer
    feats = sub_model(m, "mo_conv")
    for name, index, classes in [("kind", 0, [2, 0]), ("colour", 1, [1, 0])]:
        ref = reference_gradcam(feats, chain(L("mo_gap"), lambda h, n=name: dense_logits(L(n), h)), x, classes)
        assert_matches(cw.compute_cam(m, x, output=name, class_index=classes), ref)
        assert_matches(cw.compute_cam(m, x, output=index, class_index=classes), ref)
    with pytest.raises(ValueError, match="2 outputs.*'kind', 'colour'.*output="):
        cw.compute_cam(m, x)
    with pytest.raises(ValueError, match="output 'size' not found"):
        cw.compute_cam(m, x, output="size")


def test_default_class_is_each_images_top_class(small, rng):
    x = images(rng, 4, 32)
    top = np.argmax(small.predict(x, verbose=0), axis=1)
    np.testing.assert_allclose(cw.compute_cam(small, x), _small_reference(small, x, list(top)), atol=TOL)


def test_image_alone_equals_image_in_batch(composite_b, rng):
    x = images(rng, 4, 64) * 255
    batch = cw.compute_cam(composite_b, x, class_index=[1, 2, 3, 4])
    for i in range(4):
        alone = cw.compute_cam(composite_b, x[i], class_index=i + 1)
        np.testing.assert_allclose(alone[0], batch[i], atol=1e-5)


def test_normalize_false_is_the_raw_signed_map(small, rng):
    x = images(rng, 2, 32)
    raw = cw.compute_cam(small, x, class_index=1, normalize=False)
    norm = cw.compute_cam(small, x, class_index=1)
    relu = np.maximum(raw, 0)
    np.testing.assert_allclose(norm, relu / relu.max(axis=(1, 2), keepdims=True), atol=1e-5)


def test_preprocess_callable_is_applied(small, rng):
    pixels = images(rng, 2, 32) * 255
    np.testing.assert_allclose(
        cw.compute_cam(small, pixels, preprocess=lambda p: p / 255.0, class_index=0),
        cw.compute_cam(small, pixels / 255.0, class_index=0),
        atol=1e-6,
    )
