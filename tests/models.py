"""Tiny and classic models for the tests: every kind of Keras model people have. Random weights, offline."""

from __future__ import annotations

import keras
import numpy as np
from keras import layers

from camwidget.keras_private import walk_layers


def gap_head(n_classes: int = 5, name: str = "head") -> keras.Sequential:
    """The classic question's head: Conv2D(same) -> GlobalAveragePooling2D -> Dense(softmax)."""
    return keras.Sequential(
        [
            layers.Conv2D(16, 3, padding="same", activation="relu", name="head_conv"),
            layers.GlobalAveragePooling2D(name="head_gap"),
            layers.Dense(n_classes, activation="softmax", name="head_dense"),
        ],
        name=name,
    )


def vgg_composite_input_tensor(size: int = 64, n_classes: int = 5) -> keras.Model:
    """(a) VGG16(include_top=False, input_tensor=inp), the head called on its output."""
    inp = keras.Input((size, size, 3))
    base = keras.applications.VGG16(include_top=False, weights=None, input_tensor=inp)
    return keras.Model(inp, gap_head(n_classes)(base.output), name="composite_a")


def vgg_composite_nested(size: int = 64, n_classes: int = 5) -> keras.Model:
    """(b) VGG16(include_top=False) used as a layer: Model(inp, head(vgg(inp)))."""
    base = keras.applications.VGG16(include_top=False, weights=None, input_shape=(size, size, 3))
    inp = keras.Input((size, size, 3))
    return keras.Model(inp, gap_head(n_classes)(base(inp)), name="composite_b")


def question_head(size: int = 160, n_classes: int = 4) -> keras.Model:
    """The question's own head: AveragePooling2D((5, 5)) then Dense on a 4-D tensor: output (N, 1, 1, C)."""
    inp = keras.Input((size, size, 3))
    base = keras.applications.VGG16(include_top=False, weights=None, input_tensor=inp)
    x = layers.AveragePooling2D((5, 5), name="avg5")(base.output)
    out = layers.Dense(n_classes, activation="softmax", name="dense_4d")(x)
    return keras.Model(inp, out, name="question")


def small_cnn(n_classes: int = 3, size: int = 32, final: str = "dense_softmax", name: str = "small") -> keras.Model:
    """A small functional CNN; `final` picks how the softmax is written."""
    inp = keras.Input((size, size, 3))
    x = layers.Conv2D(8, 3, padding="same", activation="relu", name="conv_a")(inp)
    x = layers.MaxPooling2D(name="pool_a")(x)
    x = layers.Conv2D(16, 3, padding="same", activation="relu", name="conv_b")(x)
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    if final == "dense_softmax":
        out = layers.Dense(n_classes, activation="softmax", name="dense")(x)
    elif final == "activation_softmax":
        out = layers.Activation("softmax", name="act")(layers.Dense(n_classes, name="dense")(x))
    elif final == "softmax_layer":
        out = layers.Softmax(name="softmax")(layers.Dense(n_classes, name="dense")(x))
    elif final == "sigmoid":
        out = layers.Dense(1, activation="sigmoid", name="dense")(x)
    elif final == "linear":
        out = layers.Dense(n_classes, name="dense")(x)
    else:
        raise ValueError(final)
    return keras.Model(inp, out, name=name)


def sequential_cnn(with_input: bool = True, n_classes: int = 3, size: int = 32) -> keras.Sequential:
    stack = [keras.Input((size, size, 3))] if with_input else []
    return keras.Sequential(
        stack
        + [
            layers.Conv2D(8, 3, padding="same", activation="relu", name="s_conv_a"),
            layers.MaxPooling2D(name="s_pool"),
            layers.Conv2D(16, 3, padding="same", activation="relu", name="s_conv_b"),
            layers.Flatten(name="s_flat"),
            layers.Dense(n_classes, activation="softmax", name="s_dense"),
        ],
        name="seq",
    )


class SubclassedCNN(keras.Model):
    """A hand-written call()."""

    def __init__(self, n_classes: int = 3) -> None:
        super().__init__(name="subclassed")
        self.conv_a = layers.Conv2D(8, 3, padding="same", activation="relu", name="sub_conv_a")
        self.conv_b = layers.Conv2D(16, 3, padding="same", activation="relu", name="sub_conv_b")
        self.gap = layers.GlobalAveragePooling2D(name="sub_gap")
        self.dense = layers.Dense(n_classes, activation="softmax", name="sub_dense")

    def call(self, x):
        return self.dense(self.gap(self.conv_b(self.conv_a(x))))


def nested_three_deep(size: int = 32, n_classes: int = 3) -> keras.Model:
    """outer( middle( inner(conv) ) ) -> head."""
    inner_in = keras.Input((size, size, 3))
    inner = keras.Model(
        inner_in, layers.Conv2D(8, 3, padding="same", activation="relu", name="deep_conv")(inner_in), name="inner"
    )
    mid_in = keras.Input((size, size, 3))
    middle = keras.Model(
        mid_in, layers.Conv2D(8, 3, padding="same", activation="relu", name="mid_conv")(inner(mid_in)), name="middle"
    )
    inp = keras.Input((size, size, 3))
    x = middle(inp)
    x = layers.GlobalAveragePooling2D(name="outer_gap")(x)
    return keras.Model(inp, layers.Dense(n_classes, activation="softmax", name="outer_dense")(x), name="outer")


def multi_output(size: int = 32) -> keras.Model:
    inp = keras.Input((size, size, 3))
    x = layers.Conv2D(8, 3, padding="same", activation="relu", name="mo_conv")(inp)
    g = layers.GlobalAveragePooling2D(name="mo_gap")(x)
    a = layers.Dense(3, activation="softmax", name="kind")(g)
    b = layers.Dense(2, activation="softmax", name="colour")(g)
    return keras.Model(inp, [a, b], name="multi")


def flat_head_cnn(n_classes: int = 3, size: int = 32) -> keras.Model:
    """Convs, then Flatten + Dense: gradients vary over positions, so the gradient methods all differ."""
    inp = keras.Input((size, size, 3))
    x = layers.Conv2D(8, 3, padding="same", activation="relu", name="conv_a")(inp)
    x = layers.MaxPooling2D(name="pool_a")(x)
    x = layers.Conv2D(16, 3, padding="same", activation="relu", name="conv_b")(x)
    x = layers.Conv2D(8, 3, padding="same", activation="relu", name="conv_c")(x)
    x = layers.Flatten(name="flat")(x)
    return keras.Model(inp, layers.Dense(n_classes, activation="softmax", name="dense")(x), name="flat_head")


def signal_cnn(length: int, channels: int, second: int = 12, n_classes: int = 3) -> keras.Model:
    """A 1-D CNN over (length, channels) signals: conv_a, pool, conv_b (`second` filters), gap, probs."""
    inp = keras.Input((length, channels))
    x = layers.Conv1D(8, 5, padding="same", activation="relu", name="conv_a")(inp)
    x = layers.MaxPooling1D(2, name="pool")(x)
    x = layers.Conv1D(second, 3, padding="same", activation="relu", name="conv_b")(x)
    x = layers.GlobalAveragePooling1D(name="gap")(x)
    out = layers.Dense(n_classes, activation="softmax", name="probs")(x)
    return keras.Model(inp, out)


def gated_two_inputs(seed: int) -> keras.Model:
    """An image and a metadata vector that gates the image's features, so the scores depend on both (dict
    inputs, as Keras sorts them): conv (16x16x6) -> gap -> join (times meta_dense(meta)) -> probs (3)."""
    keras.utils.set_random_seed(seed)
    image = keras.Input((16, 16, 3), name="image")
    meta = keras.Input((4,), name="meta")
    x = layers.Conv2D(6, 3, padding="same", activation="relu", name="conv")(image)
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    x = layers.Multiply(name="join")([x, layers.Dense(6, activation="sigmoid", name="meta_dense")(meta)])
    out = layers.Dense(3, activation="softmax", name="probs")(x)
    return keras.Model({"image": image, "meta": meta}, out)


def segmenter(seed: int) -> keras.Model:
    """A per-pixel classifier: conv (16x16x8) -> logits (16x16x3, a 1x1 conv) -> probs (softmax per pixel)."""
    keras.utils.set_random_seed(seed)
    inp = keras.Input((16, 16, 3))
    x = layers.Conv2D(8, 3, padding="same", activation="relu", name="conv")(inp)
    logits = layers.Conv2D(3, 1, name="logits")(x)
    return keras.Model(inp, layers.Activation("softmax", name="probs")(logits))


def one_conv(seed: int) -> keras.Model:
    """The command line's model: conv (32x32x8, the only spatial layer) -> gap -> Dense softmax (3)."""
    keras.utils.set_random_seed(seed)
    inp = keras.Input((32, 32, 3))
    x = layers.Conv2D(8, 3, padding="same", activation="relu", name="conv")(inp)
    return keras.Model(inp, layers.Dense(3, activation="softmax")(layers.GlobalAveragePooling2D()(x)))


def write_picture(path, seed: int) -> None:
    """A random picture of about 38x40 at `path` (folders made), in the format its extension names (PNG without)."""
    import os

    import cv2

    os.makedirs(os.path.dirname(path), exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 256, (36 + seed % 5, 40, 3), dtype=np.uint8)
    ok, data = cv2.imencode(os.path.splitext(str(path))[1] or ".png", pixels)
    with open(path, "wb") as f:
        f.write(data.tobytes())


def write_keras_download_layout(model: keras.Model, path) -> None:
    """Save `model`'s weights in the h5 layout keras.applications publishes (what Keras downloads), written
    by Keras's own legacy writer."""
    import h5py
    from keras.src.legacy.saving.legacy_h5_format import save_weights_to_hdf5_group

    with h5py.File(path, "w") as file:
        save_weights_to_hdf5_group(file, model)


# -- the model left alone: what must be the same before and after camwidget looked at it ---------------------


def snapshot(model, x):
    return {
        "weights": [w.copy() for w in model.get_weights()],
        "pred": keras.ops.convert_to_numpy(keras.ops.stop_gradient(model(x, training=False))).copy(),
        "trainable": [(p, l.trainable) for p, l in walk_layers(model)],
        "activation": [(p, getattr(l, "activation", None)) for p, l in walk_layers(model)],
        "call_overrides": [p for p, l in walk_layers(model) if "call" in vars(l)],
        "count": len(list(walk_layers(model))),
    }


def assert_same(before, after):
    for a, b in zip(before["weights"], after["weights"]):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(before["pred"], after["pred"])
    assert before["trainable"] == after["trainable"]
    assert before["activation"] == after["activation"]
    assert after["call_overrides"] == []
    assert before["count"] == after["count"]


def all_through_explainer(calls: list[tuple[str, bool]]) -> None:
    """Every engine call the `calls` fixture recorded came from inside an Explainer (and there were some)."""
    assert calls, "the surface made no maps through the wrapped entry points: the wrapping missed them"
    direct = [name for name, inside in calls if not inside]
    assert not direct, f"engine entry points called outside the Explainer: {direct}"
