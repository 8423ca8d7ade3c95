"""Models camwidget cannot read as they are: a Keras 2 (tf_keras) model and a SavedModel behind a TFSMLayer.
Each gets a message that names it and the way out, and the way out works."""

from __future__ import annotations

import keras
import numpy as np
import pytest

import camwidget as cw

tf_keras = pytest.importorskip("tf_keras")  # a dev dependency: present in CI


def keras2_model():
    L = tf_keras.layers
    return tf_keras.Sequential(
        [
            tf_keras.Input((16, 16, 3)),
            L.Conv2D(4, 3, activation="relu", name="conv"),
            L.GlobalAveragePooling2D(),
            L.Dense(2, activation="softmax", name="dense"),
        ]
    )


# h5 on purpose: it is the format both Keras 2 writes and Keras 3 reads
@pytest.mark.filterwarnings("ignore:You are saving your model as an HDF5 file:UserWarning")
def test_a_keras2_model_is_told_how_to_convert_and_the_conversion_works(tmp_path, rng):
    old = keras2_model()
    x = rng.uniform(0, 1, (2, 16, 16, 3)).astype("float32")
    with pytest.raises(
        TypeError, match=r"model is a Keras 2 model \(tf_keras\.src\..*keras.models.load_model\('model.h5'\)"
    ):
        cw.compute_cam(old, x)
    old.save(tmp_path / "model.h5")  # the way out, as the message gives it
    new = keras.models.load_model(tmp_path / "model.h5")
    np.testing.assert_allclose(new.predict(x, verbose=0), old.predict(x, verbose=0), atol=1e-6)
    assert cw.compute_cam(new, x).shape == (2, 14, 14)


def test_a_savedmodel_behind_tfsmlayer_is_named_with_the_way_out(tmp_path, rng):
    model = keras.Sequential(
        [
            keras.Input((16, 16, 3)),
            keras.layers.Conv2D(4, 3, name="conv"),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(2),
        ]
    )
    model.export(tmp_path / "saved", verbose=False)
    wrapped = keras.Sequential(
        [keras.Input((16, 16, 3)), keras.layers.TFSMLayer(tmp_path / "saved", call_endpoint="serve")]
    )
    with pytest.raises(
        cw.CAMError, match="wraps a SavedModel .* whose layers Keras cannot see.*keras.models.load_model"
    ):
        cw.compute_cam(wrapped, rng.uniform(0, 1, (1, 16, 16, 3)).astype("float32"))
