"""camwidget.engines.model_watch: what counts as a change of the model, and what does not."""

import keras
import models
import numpy as np
import pytest

from camwidget.engines.model_watch import ModelWatch, WeightsFingerprint, structure_signature


def test_structure_signature_sees_attributes_flags_calls_and_layers():
    model = models.sequential_cnn()
    before = structure_signature(model)
    model(np.zeros((1, 32, 32, 3), np.float32))
    model.predict(np.zeros((1, 32, 32, 3), np.float32), verbose=0)
    assert structure_signature(model) == before  # calling and predicting change nothing that matters
    conv = model.get_layer("s_conv_a")
    for change, undo in (
        (
            lambda: setattr(conv, "activation", keras.activations.linear),
            lambda: setattr(conv, "activation", keras.activations.relu),
        ),
        (lambda: setattr(conv, "trainable", False), lambda: setattr(conv, "trainable", True)),
        (lambda: object.__setattr__(conv, "call", lambda *a, **k: None), lambda: object.__delattr__(conv, "call")),
    ):
        change()
        assert structure_signature(model) != before
        undo()
    model.add(keras.layers.Dense(2, name="extra"))
    assert structure_signature(model) != before


def test_fingerprint_sees_a_change_in_any_variable_large_or_small():
    model = keras.Sequential(
        [keras.Input((4,)), keras.layers.Dense(3000, name="big"), keras.layers.Dense(2, name="small")]
    )
    fingerprint = WeightsFingerprint(model)
    start = fingerprint(model)
    small = model.get_layer("small").bias
    small.assign(small.numpy() + 1e-3)
    assert not np.array_equal(fingerprint(model), start)
    big = model.get_layer("big").kernel  # 12000 values, sampled: a change of all of them is seen
    big.assign(big.numpy() * 1.01)
    changed = fingerprint(model)
    assert not np.array_equal(changed, start)
    assert np.array_equal(fingerprint(model), changed)


def test_model_watch_versions():
    model = models.small_cnn(name="watched")
    watch = ModelWatch(model)
    assert watch.check(model) == (0, 0)
    model.get_layer("dense").bias.assign(np.ones(3, np.float32))
    assert watch.check(model) == (0, 1)
    model.get_layer("conv_a").trainable = False
    assert watch.check(model) == (1, 2)
    watch.invalidate()
    assert watch.check(model) == (2, 3)


def test_a_capture_in_progress_is_not_a_change():
    from camwidget.engines.capture import capturing

    model = models.small_cnn(name="capturing")
    before = structure_signature(model)
    with capturing({"conv_a": model.get_layer("conv_a")}, lambda path, out: None):
        assert structure_signature(model) == before  # another thread's capture must not drop every trace


def test_the_optimizer_step_is_read_again_while_a_jax_fit_has_donated_it():
    """Keras's JAX trainer donates the step counter's array to each training step and puts a new one back; a
    read in between raises "deleted" (seen in test_explain's thread test), and is tried again, not failed."""
    from types import SimpleNamespace

    from camwidget.engines.model_watch import _optimizer_step

    class Donated:
        reads = 0

        def __array__(self, dtype=None, copy=None):
            Donated.reads += 1
            if Donated.reads < 3:
                raise RuntimeError("INVALID_ARGUMENT: Array has been deleted with shape=int64[].")
            return np.asarray(7)

    assert _optimizer_step(SimpleNamespace(optimizer=SimpleNamespace(iterations=Donated()))) == 7.0
    assert Donated.reads == 3

    class Broken:
        def __array__(self, dtype=None, copy=None):
            raise RuntimeError("something else")

    with pytest.raises(RuntimeError, match="something else"):  # any other error is not swallowed
        _optimizer_step(SimpleNamespace(optimizer=SimpleNamespace(iterations=Broken())))


def test_explaining_many_models_in_one_process_gives_no_retracing_warning():
    """TensorFlow warns "triggered tf.function retracing" when functions made from the same code are traced
    again and again through tf.function's dispatch: the weights fingerprint, made once per model, did that
    from the fifth model on. Nothing of camwidget's may reach a user who explains model after model."""
    import logging
    import warnings

    import camwidget as cw

    if keras.backend.backend() != "tensorflow":
        pytest.skip("a TensorFlow warning")
    records: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record):
            records.append(record.getMessage())

    handler = Keep()
    logger = logging.getLogger("tensorflow")
    logger.addHandler(handler)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            for i in range(8):
                keras.utils.set_random_seed(i)
                model = models.small_cnn(n_classes=2 + i % 3, size=16 + 4 * (i % 2), name=f"many_{i}")
                x = np.random.default_rng(i).normal(size=(1, *model.input_shape[1:])).astype(np.float32)
                assert cw.compute_cam(model, x).shape[0] == 1
    finally:
        logger.removeHandler(handler)
    said = records + [str(w.message) for w in caught]
    assert not [s for s in said if "retracing" in s], said
