"""Building a model and giving it its weights with one copy of them in memory (camwidget.demo.loading)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import h5py
import keras
import numpy as np
import pytest
from models import write_keras_download_layout as write_legacy_h5

from camwidget import demo
from camwidget.demo import loading


def small_cnn(weights=None, classes=4, **kwargs):
    """Conv, BatchNorm (non-trainable moving statistics), a frozen Dense and Dropout (a seed, which is
    state but not a weight): every kind of variable."""
    inp = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(6, 3, name="conv")(inp)
    x = keras.layers.BatchNormalization(name="bn")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    x = keras.layers.Dropout(0.5, name="dropout")(x)
    frozen = keras.layers.Dense(5, name="frozen")
    frozen.trainable = False
    x = frozen(x)
    return keras.Model(inp, keras.layers.Dense(classes, activation="softmax", name="out")(x), name="small_cnn")


def randomized(model: keras.Model, rng: np.random.Generator) -> keras.Model:
    model.set_weights([rng.normal(size=w.shape).astype(w.dtype) for w in model.get_weights()])
    return model


def test_a_legacy_h5_file_fills_every_variable_exactly(tmp_path, rng):
    source = randomized(small_cnn(), rng)
    write_legacy_h5(source, tmp_path / "w.h5")
    model = loading.build_unfilled(small_cnn)
    assert len(loading.unfilled_variables(model)) == len(model.variables) == 11  # nothing allocated yet
    loading.fill_from_h5(model, tmp_path / "w.h5")
    assert loading.unfilled_variables(model) == []
    for got, want in zip(model.weights, source.weights):
        assert (got.path, got.trainable) == (want.path, want.trainable)
        np.testing.assert_array_equal(got.numpy(), want.numpy())
    x = rng.normal(size=(2, 16, 16, 3)).astype("float32")
    np.testing.assert_allclose(model.predict(x, verbose=0), source.predict(x, verbose=0), rtol=1e-6)
    assert model(x, training=True).shape == (2, 4)  # the seed has a value too


def test_filled_model_trains_and_keras_scopes_still_work(tmp_path, rng):
    """The variables behave as Keras's own: fit updates them, and Keras's list of variables waiting for a
    value no longer holds them (closing a StatelessScope would otherwise fail on them)."""
    write_legacy_h5(randomized(small_cnn(), rng), tmp_path / "w.h5")
    model = loading.build_unfilled(small_cnn)
    loading.fill_from_h5(model, tmp_path / "w.h5")
    with keras.StatelessScope():
        keras.layers.Dense(3).build((None, 2))  # creates and, on closing, initializes a variable
    before = model.get_layer("out").kernel.numpy().copy()
    frozen_before = model.get_layer("frozen").kernel.numpy().copy()
    model.compile("sgd", "sparse_categorical_crossentropy")
    model.fit(rng.normal(size=(8, 16, 16, 3)), np.arange(8) % 4, epochs=1, verbose=0)
    assert not np.array_equal(model.get_layer("out").kernel.numpy(), before)
    np.testing.assert_array_equal(model.get_layer("frozen").kernel.numpy(), frozen_before)


def test_values_are_converted_to_the_variables_dtype(tmp_path, rng):
    source = randomized(small_cnn(), rng)
    write_legacy_h5(source, tmp_path / "w.h5")
    with h5py.File(tmp_path / "w.h5", "a") as file:  # the same file, stored as float64
        group = file["conv"]
        for name in list(group.attrs["weight_names"]):
            data = group[name][()].astype(np.float64)
            del group[name]
            group[name] = data
    model = loading.build_unfilled(small_cnn)
    loading.fill_from_h5(model, tmp_path / "w.h5")
    assert model.get_layer("conv").kernel.dtype == "float32"
    np.testing.assert_array_equal(model.get_layer("conv").kernel.numpy(), source.get_layer("conv").kernel.numpy())


def test_a_file_for_another_model_is_refused_before_any_variable_is_filled(tmp_path, rng):
    write_legacy_h5(small_cnn(classes=7), tmp_path / "other.h5")
    model = loading.build_unfilled(small_cnn)
    with pytest.raises(
        ValueError, match=r"layer 'out': out/kernel has shape \(5, 4\); the weights file's /out/out/kernel has \(5, 7\)"
    ):
        loading.fill_from_h5(model, tmp_path / "other.h5")
    assert len(loading.unfilled_variables(model)) == len(model.variables)
    write_legacy_h5(keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)]), tmp_path / "fewer.h5")
    with pytest.raises(ValueError, match="the weights file has 1 layers with weights; small_cnn has 4"):
        loading.fill_from_h5(model, tmp_path / "fewer.h5")
    assert len(loading.unfilled_variables(model)) == len(model.variables)


def test_links_in_the_file_are_refused(tmp_path, rng):
    write_legacy_h5(randomized(small_cnn(), rng), tmp_path / "w.h5")
    write_legacy_h5(randomized(small_cnn(), rng), tmp_path / "elsewhere.h5")
    with h5py.File(tmp_path / "w.h5", "a") as file:
        del file["out/out/kernel"]
        file["out/out/kernel"] = h5py.ExternalLink(str(tmp_path / "elsewhere.h5"), "/out/out/kernel")
    model = loading.build_unfilled(small_cnn)
    with pytest.raises(ValueError, match="no 'out/kernel' in '/out' \\(or it is a link, which is refused\\)"):
        loading.fill_from_h5(model, tmp_path / "w.h5")
    assert len(loading.unfilled_variables(model)) == len(model.variables)


def test_fill_with_initializers_is_quiet(caplog):
    """One compiled initializer per variable: TensorFlow's "frequent retracing" warning would be noise."""
    model = loading.build_unfilled(
        lambda: keras.Sequential([keras.Input((4,))] + [keras.layers.Dense(4) for _ in range(8)])
    )
    with caplog.at_level("WARNING"):
        loading.fill_with_initializers(model)
    assert "retracing" not in caplog.text and loading.unfilled_variables(model) == []


def test_fill_with_initializers_follows_each_layers_initializer():
    keras.utils.set_random_seed(1)
    inp = keras.Input((2000,))
    out = keras.layers.Dense(3000, bias_initializer="ones", name="d")(inp)
    model = loading.build_unfilled(lambda: keras.Model(inp, out))
    loading.fill_with_initializers(model)
    kernel, bias = model.get_layer("d").kernel.numpy(), model.get_layer("d").bias.numpy()
    limit = np.sqrt(6 / (2000 + 3000))  # Glorot uniform, Keras's default kernel initializer
    assert np.abs(kernel).max() <= limit and abs(kernel.std() - limit / np.sqrt(3)) < 1e-3 * limit * 10
    np.testing.assert_array_equal(bias, 1.0)
    assert loading.unfilled_variables(model) == []


def test_a_build_that_needs_values_is_built_the_ordinary_way():
    def build():
        model = small_cnn()
        model.get_layer("out").set_weights([np.ones((5, 4), np.float32), np.zeros(4, np.float32)])
        return model

    model = loading.build_unfilled(build)
    assert loading.unfilled_variables(model) == []
    np.testing.assert_array_equal(model.get_layer("out").kernel.numpy(), 1.0)
    with keras.StatelessScope():  # nothing left waiting from the first try
        pass


def test_a_keras_that_cannot_defer_values_still_loads(tmp_path, rng, monkeypatch):
    """Where Keras's StatelessScope does not leave variables without values (another Keras version), the
    model is built the ordinary way and Keras's own loader fills it: more memory, same weights."""
    source = randomized(small_cnn(), rng)
    write_legacy_h5(source, tmp_path / "w.h5")

    class EagerScope:  # builds with values, like a Keras without deferred initialization
        def __init__(self, **kwargs):
            pass

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def get_current_value(self, variable):
            return None

    monkeypatch.setattr(loading.keras, "StatelessScope", EagerScope)
    loaded = demo.load_pretrained(small_cnn, tmp_path / "w.h5")
    assert loaded.pretrained and loading.unfilled_variables(loaded.model) == []
    for got, want in zip(loaded.model.get_weights(), source.get_weights()):
        np.testing.assert_array_equal(got, want)


def test_is_legacy_h5_tells_the_layouts_apart(tmp_path):
    model = small_cnn()
    write_legacy_h5(model, tmp_path / "legacy.h5")
    model.save_weights(tmp_path / "new.weights.h5")
    model.save(tmp_path / "whole.h5")  # a whole model in the legacy format: weights under model_weights
    model.save(tmp_path / "whole.keras")
    assert loading.is_legacy_h5(tmp_path / "legacy.h5") and loading.is_legacy_h5(tmp_path / "whole.h5")
    assert not loading.is_legacy_h5(tmp_path / "new.weights.h5") and not loading.is_legacy_h5(tmp_path / "whole.keras")
    assert not loading.is_legacy_h5(tmp_path / "missing.h5")


def test_load_pretrained_reads_every_format_keras_writes(tmp_path, rng):
    source = randomized(small_cnn(), rng)
    write_legacy_h5(source, tmp_path / "legacy.h5")
    source.save_weights(tmp_path / "new.weights.h5")
    source.save(tmp_path / "whole.h5")
    for name in ("legacy.h5", "new.weights.h5", "whole.h5"):
        loaded = demo.load_pretrained(small_cnn, tmp_path / name)
        assert loaded.pretrained, loaded.message
        for got, want in zip(loaded.model.get_weights(), source.get_weights()):
            np.testing.assert_array_equal(got, want)


def test_load_pretrained_falls_back_to_random_weights_on_a_wrong_file(tmp_path):
    write_legacy_h5(small_cnn(classes=7), tmp_path / "other.h5")
    loaded = demo.load_pretrained(small_cnn, tmp_path / "other.h5")
    assert not loaded.pretrained and "has shape (5, 4)" in loaded.message and "random weights instead" in loaded.message
    assert loading.unfilled_variables(loaded.model) == []
    assert np.isfinite(loaded.model.predict(np.ones((1, 16, 16, 3)), verbose=0)).all()


@pytest.mark.slow
def test_the_weights_are_held_once(tmp_path):
    """In a fresh process: filling 380 MB of weights from a file raises the peak by about 380 MB, and by
    less than Keras's own build-then-load path does."""
    write = f"""
        import keras, h5py
        from keras.src.legacy.saving.legacy_h5_format import save_weights_to_hdf5_group
        model = keras.Sequential([keras.Input((25000,)), keras.layers.Dense(4000, name="big")])
        with h5py.File({str(tmp_path / "big.h5")!r}, "w") as f:
            save_weights_to_hdf5_group(f, model)
    """
    measure = f"""
        import sys, keras
        from camwidget.demo import loading
        def peak(): return int(next(l for l in open('/proc/self/status') if l.startswith('VmHWM')).split()[1]) / 1024
        build = lambda: keras.Sequential([keras.Input((25000,)), keras.layers.Dense(4000, name="big")])
        before = peak()
        if sys.argv[1] == "lean":
            model = loading.build_unfilled(build)
            loading.fill_from_h5(model, {str(tmp_path / "big.h5")!r})
        else:
            model = build()
            model.load_weights({str(tmp_path / "big.h5")!r})
        print(peak() - before)
    """
    run = lambda code, *args: (
        subprocess.run(
            [sys.executable, "-c", textwrap.dedent(code), *args],
            capture_output=True,
            text=True,
            check=True,
            timeout=300,
        ).stdout
    )
    run(write)
    size_mb = 25000 * 4000 * 4 / 2**20
    lean, keras_way = float(run(measure, "lean")), float(run(measure, "keras"))
    print(f"weights {size_mb:.0f} MB; peak added: lean {lean:.0f} MB, Keras's way {keras_way:.0f} MB")
    assert lean < 1.15 * size_mb
    assert lean < keras_way  # never worse than Keras's own path (today that one adds about 5x the weights)
