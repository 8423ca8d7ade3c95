"""Maps beyond (N, h, w, C) photos: 1-D signals, volumes, clips (TimeDistributed), vision-transformer tokens.

Each kind is checked against a Grad-CAM written here from the formula on a hand-split model (a Keras model up
to the layer, the rest run layer by layer under a GradientTape), and against tf-keras-vis's N-D Gradcam where
it supports the case.
"""

from __future__ import annotations

import keras
import models
import numpy as np
import pytest
import tensorflow as tf
from keras import layers

import camwidget as cw


def relu_max(maps: np.ndarray) -> np.ndarray:
    maps = np.maximum(maps, 0.0)
    peak = maps.reshape(len(maps), -1).max(axis=1).reshape((-1,) + (1,) * (maps.ndim - 1))
    return np.divide(maps, peak, out=np.zeros_like(maps), where=peak > 0)


def split_gradcam(model, x, layer_name, classes, head=None):
    """Grad-CAM from a hand split: A = the layer's output from a Keras sub-model, the logits from the layers
    after it run one by one (the last Dense's activation left out); w_k = mean over every position of dy_c/dA_k.
    Returns the raw maps over the layer's own positions (N, *positions) and the weights."""
    index = [l.name for l in model.layers].index(layer_name)
    features = keras.Model(model.inputs, model.layers[index].output)
    A = tf.convert_to_tensor(features(tf.constant(x)))
    with tf.GradientTape() as tape:
        tape.watch(A)
        h = A if head is None else head(A)
        if head is None:
            for later in model.layers[index + 1 :]:
                if later is model.layers[-1]:
                    h = tf.tensordot(h, later.kernel, axes=1) + later.bias  # logits: Dense before its softmax
                else:
                    h = later(h)
        y = tf.reduce_sum(tf.gather(h, classes, batch_dims=1))
    G = tape.gradient(y, A).numpy().astype(np.float64)
    A = A.numpy().astype(np.float64)
    positions = tuple(range(1, A.ndim - 1))
    weights = G.mean(axis=positions, keepdims=True)
    return (weights * A).sum(-1)


def assert_close(got, want, tol=1e-4):
    assert got.shape == want.shape, (got.shape, want.shape)
    np.testing.assert_allclose(got, want, atol=tol)
    assert want.max() > 0  # the check compared something


# -- 1-D signals --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def signal_model():
    keras.utils.set_random_seed(21)
    return models.signal_cnn(100, 2)


@pytest.fixture(scope="module")
def signals():
    return np.random.default_rng(0).normal(size=(4, 100, 2)).astype(np.float32)


def test_signal_layers_are_listed_and_the_last_conv_is_the_default(signal_model):
    assert cw.spatial_layers(signal_model) == ["conv_a", "pool", "conv_b"]
    assert cw.default_layer(signal_model) == "conv_b"


@pytest.mark.parametrize("layer", ["conv_a", "conv_b"])
def test_signal_gradcam_matches_a_hand_split_reference(signal_model, signals, layer):
    classes = [0, 1, 2, 1]
    cam = cw.compute_cam(signal_model, signals, layer=layer, class_index=classes)
    want = relu_max(split_gradcam(signal_model, signals, layer, np.array(classes)))
    assert cam.shape == (4, 100 if layer == "conv_a" else 50)
    assert_close(cam, want)


def test_one_signal_is_a_batch_of_one(signal_model, signals):
    one = cw.compute_cam(signal_model, signals[0], class_index=2)
    assert one.shape == (1, 50)
    np.testing.assert_allclose(one[0], cw.compute_cam(signal_model, signals, class_index=2)[0], atol=1e-5)


def test_signal_hirescam_and_layercam_follow_their_formulas(signal_model, signals):
    classes = np.array([2, 2, 0, 1])
    features = keras.Model(signal_model.inputs, signal_model.get_layer("conv_b").output)
    A = tf.convert_to_tensor(features(signals))
    with tf.GradientTape() as tape:
        tape.watch(A)
        z = tf.tensordot(signal_model.get_layer("gap")(A), signal_model.get_layer("probs").kernel, 1)
        y = tf.reduce_sum(tf.gather(z, classes, batch_dims=1))
    G, A = tape.gradient(y, A).numpy(), A.numpy()
    hires = cw.compute_cam(signal_model, signals, layer="conv_b", class_index=classes, method="hirescam")
    assert_close(hires, relu_max((G * A).sum(-1)))
    layercam = cw.compute_cam(signal_model, signals, layer="conv_b", class_index=classes, method="layercam")
    assert_close(layercam, relu_max((np.maximum(G, 0) * A).sum(-1)))


def test_signal_aug_smooth_flips_time(signal_model, signals):
    """aug_smooth on a signal flips its time axis (not its channels) and maps each copy back."""
    classes = np.array([0, 1, 2, 0])
    total = 0.0
    for flip in (False, True):
        for factor in (0.9, 1.0, 1.1):
            x = (signals[:, ::-1] if flip else signals) * np.float32(factor)
            m = relu_max(split_gradcam(signal_model, np.ascontiguousarray(x), "conv_b", classes))
            total = total + (m[:, ::-1] if flip else m)
    cam = cw.compute_cam(signal_model, signals, layer="conv_b", class_index=classes, aug_smooth=True)
    assert_close(cam, relu_max(total / 6))


def test_signal_gradcam_matches_tf_keras_vis(signal_model, signals):
    """tf-keras-vis's Gradcam is N-D: its map over the Conv1D's positions, before resizing."""
    from tf_keras_vis.gradcam import Gradcam
    from tf_keras_vis.utils.model_modifiers import ReplaceToLinear
    from tf_keras_vis.utils.scores import CategoricalScore

    classes = [1, 0, 2, 2]
    tool = Gradcam(signal_model, model_modifier=ReplaceToLinear(), clone=True)
    peer = tool(CategoricalScore(classes), signals, penultimate_layer="conv_b", expand_cam=False, normalize_cam=False)
    assert_close(cw.compute_cam(signal_model, signals, layer="conv_b", class_index=classes), relu_max(np.asarray(peer)))


def test_image_only_methods_say_so_on_signals(signal_model, signals):
    for method in ("scorecam", "guided-gradcam"):
        with pytest.raises(ValueError, match=rf"'{method}' works on image models.*signal map"):
            cw.compute_cam(signal_model, signals, method=method)


def test_signal_of_the_wrong_shape_names_both(signal_model):
    with pytest.raises(ValueError, match=r"images have length 80, but the model takes 100"):
        cw.compute_cam(signal_model, np.zeros((2, 80, 2), np.float32))
    with pytest.raises(ValueError, match=r"expected \(N, length, channels\) or one \(length, channels\)"):
        cw.compute_cam(signal_model, np.zeros((100,), np.float32))


def test_cam_works_on_a_signal_model_with_global_average_pooling(signal_model, signals):
    """CAM's condition (GAP then one Dense) holds here in 1-D; CAM then equals Grad-CAM."""
    classes = [0, 1, 2, 0]
    cam = cw.compute_cam(signal_model, signals, layer="conv_b", class_index=classes, method="cam")
    assert_close(cam, cw.compute_cam(signal_model, signals, layer="conv_b", class_index=classes), tol=1e-4)


# -- volumes and clips ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def volume_model():
    keras.utils.set_random_seed(22)
    inp = keras.Input((6, 16, 16, 1))
    x = layers.Conv3D(6, 3, padding="same", activation="relu", name="conv3d_a")(inp)
    x = layers.MaxPooling3D((1, 2, 2), name="pool")(x)
    x = layers.Conv3D(8, 3, padding="same", activation="relu", name="conv3d_b")(x)
    x = layers.GlobalAveragePooling3D(name="gap")(x)
    out = layers.Dense(4, activation="softmax", name="probs")(x)
    return keras.Model(inp, out)


def test_volume_gradcam_matches_a_hand_split_reference(volume_model):
    x = np.random.default_rng(1).normal(size=(3, 6, 16, 16, 1)).astype(np.float32)
    classes = np.array([3, 0, 1])
    cam = cw.compute_cam(volume_model, x, class_index=classes)
    assert cw.default_layer(volume_model) == "conv3d_b"
    assert cam.shape == (3, 6, 8, 8)
    assert_close(cam, relu_max(split_gradcam(volume_model, x, "conv3d_b", classes)))
    hires = cw.compute_cam(volume_model, x, class_index=classes, method="gradcam++")
    assert hires.shape == (3, 6, 8, 8) and np.isfinite(hires).all()


def test_volume_gradcam_matches_tf_keras_vis(volume_model):
    from tf_keras_vis.gradcam import Gradcam
    from tf_keras_vis.utils.model_modifiers import ReplaceToLinear
    from tf_keras_vis.utils.scores import CategoricalScore

    x = np.random.default_rng(2).normal(size=(2, 6, 16, 16, 1)).astype(np.float32)
    tool = Gradcam(volume_model, model_modifier=ReplaceToLinear(), clone=True)
    peer = tool(CategoricalScore([1, 2]), x, penultimate_layer="conv3d_b", expand_cam=False, normalize_cam=False)
    assert_close(cw.compute_cam(volume_model, x, class_index=[1, 2]), relu_max(np.asarray(peer)))


@pytest.fixture(scope="module")
def clip_model():
    """Frames through TimeDistributed(Conv2D), then a Conv3D across time."""
    keras.utils.set_random_seed(23)
    inp = keras.Input((5, 20, 20, 3))
    x = layers.TimeDistributed(layers.Conv2D(6, 3, padding="same", activation="relu"), name="frames")(inp)
    x = layers.TimeDistributed(layers.MaxPooling2D(2), name="frames_pool")(x)
    x = layers.TimeDistributed(layers.Conv2D(8, 3, padding="same", activation="relu"), name="frames_b")(x)
    x = layers.GlobalAveragePooling3D(name="gap")(x)
    out = layers.Dense(3, activation="softmax", name="probs")(x)
    return keras.Model(inp, out)


def test_time_distributed_frames_are_maps_over_time(clip_model):
    """The wrapped Conv2D (its batch is N*T frames) is not offered; the TimeDistributed layer is, over (T, h, w)."""
    assert cw.spatial_layers(clip_model) == ["frames", "frames_pool", "frames_b"]
    x = np.random.default_rng(3).normal(size=(2, 5, 20, 20, 3)).astype(np.float32)
    cam = cw.compute_cam(clip_model, x, class_index=[0, 2])
    assert cam.shape == (2, 5, 10, 10)
    assert_close(cam, relu_max(split_gradcam(clip_model, x, "frames_b", np.array([0, 2]))))


def test_one_clip_is_a_batch_of_one(clip_model):
    clip = np.random.default_rng(4).normal(size=(5, 20, 20, 3)).astype(np.float32)
    assert cw.compute_cam(clip_model, clip).shape == (1, 5, 10, 10)


# -- vision transformers --------------------------------------------------------------------------------------


class ClassToken(layers.Layer):
    """A learned class token put before the patch tokens, and learned position embeddings added."""

    def build(self, input_shape):
        self.token = self.add_weight(shape=(1, 1, input_shape[-1]), initializer="random_normal", name="cls")
        self.position = self.add_weight(
            shape=(1, input_shape[1] + 1, input_shape[-1]), initializer="random_normal", name="pos"
        )

    def call(self, x):
        token = tf.tile(self.token, [tf.shape(x)[0], 1, 1])
        return tf.concat([token, x], axis=1) + self.position


def tiny_vit(size=(32, 48), patch=8, dim=16, blocks=2) -> keras.Model:
    keras.utils.set_random_seed(24)
    inp = keras.Input((*size, 3))
    x = layers.Conv2D(dim, patch, strides=patch, name="patches")(inp)
    x = layers.Reshape(((size[0] // patch) * (size[1] // patch), dim), name="flatten_patches")(x)
    x = ClassToken(name="embed")(x)
    for b in range(blocks):
        h = layers.LayerNormalization(name=f"block{b}_norm1")(x)
        h = layers.MultiHeadAttention(2, dim // 2, name=f"block{b}_attention")(h, h)
        x = layers.Add(name=f"block{b}_add1")([x, h])
        h = layers.LayerNormalization(name=f"block{b}_norm2")(x)
        h = layers.Dense(dim, activation="gelu", name=f"block{b}_mlp")(h)
        x = layers.Add(name=f"block{b}_add2")([x, h])
    x = layers.LayerNormalization(name="final_norm")(x)
    x = layers.Lambda(lambda t: t[:, 0], name="class_token")(x)
    out = layers.Dense(5, activation="softmax", name="probs")(x)
    return keras.Model(inp, out)


@pytest.fixture(scope="module")
def vit():
    return tiny_vit()


def vit_reference(model, x, layer_name, classes, leading=1, grid=(4, 6)):
    raw = split_gradcam_tokens(model, x, layer_name, classes, leading)
    return relu_max(raw.reshape(len(x), *grid))


def vit_forward(model, x, at, replace=None, blocks=2):
    """tiny_vit written out layer by layer: the logits (the last Dense before its softmax), and the value of
    layer `at`; with `replace`, that value is swapped for the given tensor (to differentiate with respect to it)."""
    seen = {}

    def step(name, value):
        if name == at:
            seen["A"] = value if replace is None else replace
            return seen["A"]
        return value

    L = model.get_layer
    x = step("patches", L("patches")(x))
    x = step("flatten_patches", L("flatten_patches")(x))
    x = step("embed", L("embed")(x))
    for b in range(blocks):
        h = step(f"block{b}_norm1", L(f"block{b}_norm1")(x))
        h = step(f"block{b}_attention", L(f"block{b}_attention")(h, h))
        x = step(f"block{b}_add1", x + h)
        h = step(f"block{b}_norm2", L(f"block{b}_norm2")(x))
        h = step(f"block{b}_mlp", L(f"block{b}_mlp")(h))
        x = step(f"block{b}_add2", x + h)
    x = L("final_norm")(x)[:, 0]
    return tf.tensordot(x, L("probs").kernel, 1) + L("probs").bias, seen["A"]


def split_gradcam_tokens(model, x, layer_name, classes, leading):
    """Grad-CAM over the patch tokens: the class token (the first `leading`) is left out of the pooling."""
    _, A = vit_forward(model, tf.constant(x), layer_name)
    with tf.GradientTape() as tape:
        tape.watch(A)
        z, _ = vit_forward(model, tf.constant(x), layer_name, replace=A)
        y = tf.reduce_sum(tf.gather(z, classes, batch_dims=1))
    G = tape.gradient(y, A).numpy().astype(np.float64)[:, leading:]
    A = A.numpy().astype(np.float64)[:, leading:]
    return (G.mean(axis=1, keepdims=True) * A).sum(-1)


def test_token_layers_are_found_with_their_grid(vit):
    from camwidget.engines import MapGeometry, engine_for

    layout = engine_for(vit).layout((32, 48, 3))
    assert layout.layers["embed"].geometry == MapGeometry("tokens", (4, 6), 1)
    assert layout.layers["flatten_patches"].geometry == MapGeometry("tokens", (4, 6), 0)
    assert "block1_norm1" in cw.spatial_layers(vit)


def test_vit_default_is_the_last_blocks_first_norm(vit):
    """After the last attention, only the class token reaches the output: its patch gradients are zero there."""
    assert cw.default_layer(vit) == "block1_norm1"
    x = np.random.default_rng(5).normal(size=(2, 32, 48, 3)).astype(np.float32)
    late = cw.compute_cam(vit, x, layer="block1_add2", normalize=False)
    assert np.abs(late).max() == 0  # why the last layer is not the default


def test_vit_gradcam_matches_a_hand_split_reference(vit):
    x = np.random.default_rng(6).normal(size=(3, 32, 48, 3)).astype(np.float32)
    classes = np.array([4, 0, 2])
    for layer in ("block1_norm1", "block0_add2"):
        cam = cw.compute_cam(vit, x, layer=layer, class_index=classes)
        assert cam.shape == (3, 4, 6)
        assert_close(cam, vit_reference(vit, x, layer, classes))


def test_vit_grid_can_be_given_and_a_wrong_one_names_both_counts(vit):
    x = np.random.default_rng(7).normal(size=(1, 32, 48, 3)).astype(np.float32)
    given = cw.compute_cam(vit, x, layer="block1_norm1", grid=(4, 6), class_index=1)
    np.testing.assert_allclose(given, cw.compute_cam(vit, x, layer="block1_norm1", class_index=1), atol=1e-6)
    with pytest.raises(ValueError, match=r"grid \(5, 6\) has 30 positions, but the layer has 25 tokens"):
        cw.compute_cam(vit, x, layer="block1_norm1", grid=(5, 6))
    with pytest.raises(TypeError, match="grid must be two positive ints"):
        cw.compute_cam(vit, x, grid=(4,))
    with pytest.raises(ValueError, match=r"grid= reads a token layer"):
        cw.compute_cam(vit, x, layer="patches", grid=(4, 6))


def test_vit_grid_on_its_side_or_with_too_many_leading_tokens_is_refused_unless_leading_tokens_says_so(vit):
    """The picture is 32×48 (25 tokens: a class token and a 4×6 grid). grid=(6, 4) has the same count turned on
    its side, and grid=(2, 2) would leave 21 "class tokens": both are refused naming the grid that fits, and both
    are read as given where leading_tokens= says how many tokens come first."""
    x = np.random.default_rng(9).normal(size=(2, 32, 48, 3)).astype(np.float32)
    classes = np.array([1, 3])
    fits = r"the grid that fits the picture's 32×48 is grid=\(4, 6\) after 1 leading token"
    with pytest.raises(cw.CAMError, match=r"grid \(6, 4\) is the picture's aspect turned on its side: .*" + fits):
        cw.compute_cam(vit, x, layer="block1_norm1", grid=(6, 4))
    with pytest.raises(
        cw.CAMError,
        match=r"grid \(2, 2\) leaves 21 of the layer's 25 tokens before it, more than the 8 .*"
        + fits
        + r".*leading_tokens=21",
    ):
        cw.compute_cam(vit, x, layer="block1_norm1", grid=(2, 2))
    with pytest.raises(cw.CAMError, match=r"grid \(6, 4\) .* leaves 1 leading tokens, but leading_tokens=2"):
        cw.compute_cam(vit, x, layer="block1_norm1", grid=(6, 4), leading_tokens=2)
    with pytest.raises(cw.CAMError, match=r"leading_tokens must be an int of at least 0 .*, not -1"):
        cw.compute_cam(vit, x, layer="block1_norm1", leading_tokens=-1)
    with pytest.raises(cw.CAMError, match=r"leading_tokens=3 leaves 22 of the layer's 25 tokens, which make no grid"):
        cw.compute_cam(vit, x, layer="block1_norm1", leading_tokens=3)
    with pytest.raises(cw.CAMError, match=r"leading_tokens= reads a token layer"):
        cw.compute_cam(vit, x, layer="patches", leading_tokens=1)
    turned = cw.compute_cam(vit, x, layer="block1_norm1", grid=(6, 4), leading_tokens=1, class_index=classes)
    assert turned.shape == (2, 6, 4)
    assert_close(turned, vit_reference(vit, x, "block1_norm1", classes, leading=1, grid=(6, 4)))
    many = cw.Explainer(vit, layer="block1_norm1", grid=(2, 2), leading_tokens=21).explain(x, classes)
    assert_close(many, vit_reference(vit, x, "block1_norm1", classes, leading=21, grid=(2, 2)))
    alone = cw.compute_cam(vit, x, layer="block1_norm1", leading_tokens=1, class_index=classes)
    np.testing.assert_allclose(alone, cw.compute_cam(vit, x, layer="block1_norm1", class_index=classes), atol=1e-6)


def test_vit_scorecam_and_guided_run_on_the_patch_grid(vit):
    x = np.random.default_rng(8).normal(size=(1, 32, 48, 3)).astype(np.float32)
    assert cw.compute_cam(vit, x, method="scorecam", class_index=0).shape == (1, 4, 6)
    assert cw.compute_cam(vit, x, method="eigencam").shape == (1, 4, 6)


def test_keras_hub_vit_with_random_weights():
    """A ViT from keras_hub's own classes (no preset download): its token layers are found, the default is the
    last block's first norm, and its map equals a hand-split reference."""
    keras_hub = pytest.importorskip("keras_hub", reason="keras_hub is a dev dependency; pip install -e .[dev]")
    keras.utils.set_random_seed(25)
    backbone = keras_hub.models.ViTBackbone(
        image_shape=(32, 32, 3), patch_size=8, num_layers=2, num_heads=2, hidden_dim=16, mlp_dim=32
    )
    model = keras_hub.models.ViTImageClassifier(backbone=backbone, num_classes=4, activation="softmax")
    x = np.random.default_rng(9).normal(size=(2, 32, 32, 3)).astype(np.float32)
    layer = cw.default_layer(model)
    assert layer == "vi_t_backbone/vit_encoder/transformer_block_2/ln_1"
    listed = cw.spatial_layers(model)
    assert "vi_t_backbone/vit_encoder/transformer_block_1/mlp" in listed
    assert not any(p.endswith(("mha/query", "mha/key", "mha/value")) for p in listed)  # (tokens, heads, dim)
    classes = [1, 3]
    cam = cw.compute_cam(model, x, class_index=classes)

    # Hand split: everything before the last block's first norm run as given, then the rest from A on.
    backbone, encoder = model.backbone, model.backbone.get_layer("vit_encoder")
    h = encoder.dropout(backbone.get_layer("vit_patching_and_embedding")(x))
    h = encoder.encoder_layers[0](h)
    block = encoder.encoder_layers[1]
    A = block.layer_norm_1(h)
    with tf.GradientTape() as tape:
        tape.watch(A)
        t = block.mha(A, A) + h
        t = t + block.mlp(block.layer_norm_2(t))
        t = encoder.layer_norm(t)
        dense = model.get_layer("predictions")
        z = tf.tensordot(t[:, 0], dense.kernel, 1) + dense.bias
        y = tf.reduce_sum(tf.gather(z, classes, batch_dims=1))
    G = tape.gradient(y, A).numpy().astype(np.float64)[:, 1:]
    A = A.numpy().astype(np.float64)[:, 1:]
    want = relu_max((G.mean(axis=1, keepdims=True) * A).sum(-1).reshape(2, 4, 4))
    assert_close(cam, want)


# -- several inputs ----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def two_inputs():
    return models.gated_two_inputs(seed=26)


def two_input_reference(model, x, meta, classes):
    A = keras.Model(model.inputs, model.get_layer("conv").output)({"image": x, "meta": meta})
    m = model.get_layer("meta_dense")(meta)
    with tf.GradientTape() as tape:
        tape.watch(A)
        h = tf.reduce_mean(A, axis=(1, 2)) * m
        z = tf.tensordot(h, model.get_layer("probs").kernel, 1)
        y = tf.reduce_sum(tf.gather(z, classes, batch_dims=1))
    G = tape.gradient(y, A).numpy()
    return relu_max((G.mean(axis=(1, 2), keepdims=True) * A.numpy()).sum(-1))


def test_images_go_to_the_named_input_and_the_others_are_given_once(two_inputs):
    rng = np.random.default_rng(10)
    x = rng.normal(size=(3, 16, 16, 3)).astype(np.float32)
    shared = rng.normal(size=(4,)).astype(np.float32)
    classes = np.array([0, 2, 1])
    cam = cw.compute_cam(two_inputs, x, input="image", other_inputs={"meta": shared}, class_index=classes)
    assert_close(cam, two_input_reference(two_inputs, x, np.repeat(shared[None], 3, 0), classes))
    per_image = rng.normal(size=(3, 4)).astype(np.float32) * 5
    by_index = cw.compute_cam(two_inputs, x, input=0, other_inputs=[per_image], class_index=classes)
    assert_close(by_index, two_input_reference(two_inputs, x, per_image, classes))
    assert not np.allclose(by_index, cam)  # the other input matters here, so the check can fail


def test_the_top_class_depends_on_the_other_input(two_inputs):
    """class_index=None takes the top class of the model's output given both inputs."""
    x = np.random.default_rng(11).normal(size=(1, 16, 16, 3)).astype(np.float32)
    metas = np.random.default_rng(12).normal(size=(8, 4)).astype(np.float32) * 10
    for meta in metas:
        probs = two_inputs({"image": x, "meta": meta[None]}).numpy()[0]
        top = int(np.argmax(probs))
        cam = cw.compute_cam(two_inputs, x, input="image", other_inputs={"meta": meta})
        assert_close(cam, two_input_reference(two_inputs, x, meta[None], np.array([top])))


def test_scorecam_on_two_inputs_keeps_each_images_other_input(two_inputs):
    x = np.random.default_rng(13).normal(size=(2, 16, 16, 3)).astype(np.float32)
    metas = np.random.default_rng(14).normal(size=(2, 4)).astype(np.float32)
    both = cw.compute_cam(two_inputs, x, input="image", other_inputs={"meta": metas}, method="scorecam", class_index=1)
    for i in range(2):
        one = cw.compute_cam(
            two_inputs, x[i], input="image", other_inputs={"meta": metas[i]}, method="scorecam", class_index=1
        )
        np.testing.assert_allclose(both[i], one[0], atol=1e-5)


def test_several_inputs_errors_name_the_inputs(two_inputs):
    x = np.zeros((2, 16, 16, 3), np.float32)
    with pytest.raises(ValueError, match=r"the model has 2 inputs \('image', 'meta'\); pass input="):
        cw.compute_cam(two_inputs, x)
    with pytest.raises(ValueError, match=r"also takes 'meta': give their values as other_inputs=\{'meta': ...\}"):
        cw.compute_cam(two_inputs, x, input="image")
    with pytest.raises(ValueError, match=r"input 'picture' not found; the model's inputs are 'image', 'meta'"):
        cw.compute_cam(two_inputs, x, input="picture", other_inputs={"meta": np.zeros(4)})
    with pytest.raises(ValueError, match=r"other input 'meta' has shape \(5,\); the model takes \(4\) per image"):
        cw.compute_cam(two_inputs, x, input="image", other_inputs={"meta": np.zeros(5)})
    with pytest.raises(ValueError, match=r"other_inputs names 'labels', which are not other inputs"):
        cw.compute_cam(two_inputs, x, input="image", other_inputs={"labels": np.zeros(4)})
    with pytest.raises(ValueError, match=r"input 'meta' was given 3 rows for 2 images"):
        cw.compute_cam(two_inputs, x, input="image", other_inputs={"meta": np.zeros((3, 4))})
    with pytest.raises(ValueError, match=r"images have height 8, but the model takes 16"):
        cw.compute_cam(two_inputs, np.zeros((1, 8, 8, 3)), input="image", other_inputs={"meta": np.zeros(4)})
    with pytest.raises(ValueError, match="input= and other_inputs= are for models with several inputs"):
        cw.compute_cam(tiny_vit(), np.zeros((1, 32, 48, 3)), input="image", other_inputs={"meta": np.zeros(4)})
