"""The notebooks' helpers: pretrained weights when they can be had, a clear stand-in when not."""

from __future__ import annotations

import keras
import numpy as np
from models import write_keras_download_layout

from camwidget import demo, notes


def tiny(weights=None, **kwargs):
    inp = keras.Input((8, 8, 3))
    return keras.Model(inp, keras.layers.Conv2D(2, 3, name="c")(inp), name="tiny")


def test_weights_file_is_loaded(tmp_path):
    source = tiny()
    source.get_layer("c").set_weights([np.full((3, 3, 3, 2), 0.5, np.float32), np.ones(2, np.float32)])
    source.save_weights(tmp_path / "w.weights.h5")
    loaded = demo.load_pretrained(tiny, tmp_path / "w.weights.h5")
    assert loaded.pretrained and "pretrained weights from" in loaded.message
    np.testing.assert_array_equal(loaded.model.get_layer("c").kernel.numpy(), 0.5)


def test_missing_weights_give_a_random_stand_in_and_one_sentence(tmp_path):
    loaded = demo.load_pretrained(tiny, tmp_path / "missing.h5")
    assert not loaded.pretrained and loaded.model.name == "tiny"
    assert loaded.message.startswith("Could not load pretrained weights") and "random weights" in loaded.message
    assert notes.note_of(loaded.model) == notes.STAND_IN  # the explorer and the gallery say it too


def test_sample_photos_keep_their_names_in_a_list_too():
    from camwidget.inputs.images import picture_names

    photos = demo.sample_photos()
    assert picture_names(photos, 2) == ["chelsea the cat", "coffee"]
    assert picture_names([photos["coffee"], photos["chelsea the cat"][:100]], 2) == ["coffee", "chelsea the cat"]
    assert picture_names([np.asarray(photos["coffee"])], 1) == ["image 0"]  # a plain array has no name


def test_the_stand_in_is_the_same_on_every_run(tmp_path):
    first = demo.load_pretrained(tiny, tmp_path / "missing.h5").model.get_layer("c").kernel.numpy()
    keras.utils.set_random_seed(123)  # whatever ran before
    again = demo.load_pretrained(tiny, tmp_path / "missing.h5").model.get_layer("c").kernel.numpy()
    other = demo.load_pretrained(tiny, tmp_path / "missing.h5", stand_in_seed=1).model.get_layer("c").kernel.numpy()
    np.testing.assert_array_equal(first, again)
    assert not np.allclose(first, other)


def test_imagenet_download_path_uses_keras_get_file(tmp_path, monkeypatch):
    """VGG16's download path, with Keras's get_file pointed at a file written here (nothing downloads)."""
    weights = tmp_path / "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5"
    keras.utils.set_random_seed(3)
    source = keras.applications.VGG16(weights=None, include_top=False, input_shape=(32, 32, 3))
    write_keras_download_layout(source, weights)
    asked = []
    monkeypatch.setattr(
        keras.utils, "get_file", lambda fname, origin, **kw: asked.append((fname, origin)) or str(weights)
    )
    loaded = demo.load_pretrained(keras.applications.VGG16, include_top=False, input_shape=(32, 32, 3))
    assert loaded.pretrained and asked[0][0].endswith("_notop.h5")
    for got, want in zip(loaded.model.get_weights(), source.get_weights()):
        np.testing.assert_array_equal(got, want)


def test_decode_uses_shipped_imagenet_names():
    probs = np.zeros(1000)
    probs[281], probs[285] = 0.7, 0.2
    assert demo.decode(probs, top=2) == [(281, "tabby", 0.7), (285, "Egyptian cat", 0.2)]
    assert demo.decode(np.array([0.1, 0.9]), top=1) == [(1, "class 1", 0.9)]
