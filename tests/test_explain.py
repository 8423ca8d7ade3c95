"""The Explainer sees the model as it is now: after every kind of change, maps equal a fresh computation.

The fresh reference is computed on a clone of the model as it now is (same config, same weights), which
has never been seen by camwidget: no cache or traced pass can be shared with it.
"""

from __future__ import annotations

import gc
import threading
import weakref

import keras
import models
import numpy as np
import pytest

import camwidget as cw
from camwidget.errors import CAMError
from camwidget.explain import Explainer, Options


def fresh_cam(model, x, **kwargs):
    """compute_cam on a never-seen clone of `model` as it is now."""
    clone = keras.models.clone_model(model)
    clone.build(model.input_shape) if not clone.built else None
    clone.set_weights(model.get_weights())
    for source, target in zip(model.layers, clone.layers):
        target.trainable = source.trainable
    return cw.compute_cam(clone, x, **kwargs)


@pytest.fixture
def trainable_cnn():
    keras.utils.set_random_seed(5)
    return models.small_cnn(name="trainable")


def explorer_cam(ex, layer):
    ex.layer = layer
    return ex.cam


def _fit(model, x):
    model.compile(optimizer=keras.optimizers.SGD(0.5), loss="sparse_categorical_crossentropy")
    model.fit(x, np.arange(len(x)) % 3, epochs=3, verbose=0)


def _set_weights(model, x):
    rng = np.random.default_rng(1)
    model.set_weights([rng.normal(0, 0.3, w.shape).astype(w.dtype) for w in model.get_weights()])


def _load_weights(model, x, tmp_path):
    other = models.small_cnn(name="other")
    other.set_weights([w * 1.7 + 0.05 for w in model.get_weights()])
    path = tmp_path / "other.weights.h5"
    other.save_weights(path)
    model.load_weights(path)


def _custom_loop(model, x):
    """Three steps of a hand-written training loop, with the backend's own autodiff."""
    optimizer = keras.optimizers.Adam(0.05)
    backend = keras.backend.backend()
    for _ in range(3):
        if backend == "tensorflow":
            import tensorflow as tf

            with tf.GradientTape() as tape:
                loss = tf.reduce_sum(model(x, training=True)[:, 1])
            grads = tape.gradient(loss, model.trainable_variables)
        elif backend == "jax":
            import jax

            non_trainable = [v.value for v in model.non_trainable_variables]

            def loss(trainable):
                return model.stateless_call(trainable, non_trainable, x, training=True)[0][:, 1].sum()

            grads = jax.grad(loss)([v.value for v in model.trainable_variables])
        else:
            import torch

            loss = model(x, training=True)[:, 1].sum()
            grads = torch.autograd.grad(loss, [v.value for v in model.trainable_variables])
        optimizer.apply(grads, model.trainable_variables)


def _activation_replaced(model, x):
    model.get_layer("conv_b").activation = keras.activations.linear


def _trainable_flipped(model, x):
    model.get_layer("conv_a").trainable = False


CHANGES = {
    "fit": _fit,
    "set_weights": _set_weights,
    "load_weights": _load_weights,
    "custom training loop": _custom_loop,
    "activation replaced": _activation_replaced,
    "trainable flipped": _trainable_flipped,
}


@pytest.mark.parametrize("change", list(CHANGES))
def test_compute_cam_sees_every_change(change, trainable_cnn, batch, tmp_path):
    model = trainable_cnn
    before = {layer: cw.compute_cam(model, batch, layer=layer, class_index=1) for layer in ("conv_a", "conv_b")}
    fn = CHANGES[change]
    fn(model, batch, tmp_path) if change == "load_weights" else fn(model, batch)
    for layer in ("conv_b", "conv_a"):
        now = cw.compute_cam(model, batch, layer=layer, class_index=1)
        np.testing.assert_allclose(now, fresh_cam(model, batch, layer=layer, class_index=1), atol=1e-5)
    if change != "trainable flipped":  # a flag that does not change inference: the maps may stay the same
        assert not np.allclose(cw.compute_cam(model, batch, layer="conv_b", class_index=1), before["conv_b"])


@pytest.mark.parametrize("change", list(CHANGES))
def test_explorer_sees_every_change(change, trainable_cnn, batch, tmp_path):
    model = trainable_cnn
    pictures = [(x * 255).astype(np.uint8) for x in batch[:2]]
    ex = cw.CAMExplorer(model, pictures, preprocess=lambda p: p / 255.0, class_index=1)
    for layer in ("conv_a", "pool_a", "conv_b"):  # every layer seen, cached, for both images
        for index in (0, 1):
            ex.image_index = index
            explorer_cam(ex, layer)
    ex.image_index = 0
    fn = CHANGES[change]
    fn(model, batch, tmp_path) if change == "load_weights" else fn(model, batch)
    x = ex.session.model_input(0)
    for layer in ("conv_a", "conv_b", "pool_a"):  # going back to cached layers, and a class change
        expected = fresh_cam(model, x, layer=layer, class_index=1)[0]
        np.testing.assert_allclose(explorer_cam(ex, layer), expected, atol=1e-5)
    ex.class_index = 2
    np.testing.assert_allclose(ex.cam, fresh_cam(model, x, layer="pool_a", class_index=2)[0], atol=1e-5)
    ex.close()


def test_layers_added_to_a_sequential_are_seen(rng):
    model = models.sequential_cnn()
    x = rng.uniform(0, 1, (2, 32, 32, 3)).astype("float32")
    cw.compute_cam(model, x, layer="s_conv_b")
    model.pop()
    model.add(keras.layers.Dense(4, activation="softmax", name="s_dense_new"))
    got = cw.compute_cam(model, x, layer="s_conv_b", class_index=3)
    np.testing.assert_allclose(got, fresh_cam(model, x, layer="s_conv_b", class_index=3), atol=1e-5)


@pytest.mark.parametrize("method", ["gradcam", "eigencam"])
def test_an_edit_made_while_the_pass_runs_is_never_shown(method, trainable_cnn, batch, monkeypatch):
    """The model is edited after the pass was set up and before its maps are returned: at the look that JAX
    makes while its pass runs on the device, at the look after the pass elsewhere. The maps of the model as it
    was are dropped, and those returned are the edited model's."""
    from camwidget.engines import engine_for

    model = trainable_cnn
    before = cw.compute_cam(model, batch, layer="conv_b", class_index=1, method=method)  # traced and looked at
    engine = engine_for(model)
    state = {"pass started": False, "edited": False}
    for entry in ("capture", "capture_maps"):
        if hasattr(engine, entry):
            original = getattr(engine, entry)
            monkeypatch.setattr(
                engine,
                entry,
                lambda *a, _original=original, **k: state.update({"pass started": True}) or _original(*a, **k),
            )
    real_sync = engine.sync

    def sync():
        if state["pass started"] and not state["edited"]:
            state["edited"] = True
            _activation_replaced(model, batch)
        return real_sync()

    monkeypatch.setattr(engine, "sync", sync)
    got = cw.compute_cam(model, batch, layer="conv_b", class_index=1, method=method)
    assert state["edited"]
    monkeypatch.undo()
    want = fresh_cam(model, batch, layer="conv_b", class_index=1, method=method)
    assert not np.allclose(want, before, atol=1e-3)
    np.testing.assert_allclose(got, want, atol=1e-5)


def test_the_change_check_is_not_fooled_by_calls_predict_or_evaluate(trainable_cnn, batch):
    model = trainable_cnn
    explainer = Explainer(model)
    explainer.explain(batch)
    state = explainer.sync()
    model(batch)
    model.predict(batch, verbose=0)
    model.compile(loss="sparse_categorical_crossentropy")
    model.evaluate(batch, np.zeros(4), verbose=0)
    assert explainer.sync() == state
    traces = explainer.engine.trace_count
    explainer.explain(batch)
    assert explainer.engine.trace_count == traces, "nothing changed, yet the pass was traced again"


def test_refresh_recomputes_after_an_in_place_edit_the_check_cannot_see(trainable_cnn, batch):
    model = trainable_cnn
    pictures = [(batch[0] * 255).astype(np.uint8)]
    ex = cw.CAMExplorer(model, pictures, preprocess=lambda p: p / 255.0, layer="conv_b")
    kernel = model.get_layer("dense").kernel
    kernel.assign(kernel.numpy() * 3.0)  # small variables are summed whole: seen without refresh
    np.testing.assert_allclose(ex.cam, fresh_cam(model, ex.session.model_input(0), layer="conv_b")[0], atol=1e-5)
    ex.refresh()
    np.testing.assert_allclose(ex.cam, fresh_cam(model, ex.session.model_input(0), layer="conv_b")[0], atol=1e-5)
    ex.close()


# -- ownership -------------------------------------------------------------------------------------------------


def test_explorer_keeps_a_loaded_model_alive(tmp_path, rng):
    path = tmp_path / "m.keras"
    models.small_cnn(name="saved").save(path)
    ex = cw.CAMExplorer(keras.models.load_model(path), rng.integers(0, 256, (32, 32, 3), dtype=np.uint8))
    gc.collect()
    ex.layer = "conv_a"
    ex.class_index = 2
    assert ex.cam.shape == (32, 32) and "✖" not in ex.status_text
    ex.close()


def test_close_lets_the_model_and_its_passes_go(rng):
    model = models.small_cnn(name="released")
    ref = weakref.ref(model)
    ex = cw.CAMExplorer(model, rng.integers(0, 256, (32, 32, 3), dtype=np.uint8))
    ex.layer = "conv_a"
    engine = ex.session.engine
    assert engine.compiled_count > 0
    del model
    gc.collect()
    assert ref() is not None, "the explorer must hold its model"
    ex.close()
    gc.collect()
    assert ref() is None, "close() must let the model go"
    assert engine.compiled_count == 0, "close() must drop every pass traced for the model"
    with pytest.raises(CAMError, match="closed"):
        ex.session.explainer.model  # noqa: B018


# -- threads -----------------------------------------------------------------------------------------------


@pytest.mark.slow  # threads training the model while maps are made
def test_compute_cam_while_other_threads_call_predict_and_train_the_model(rng):
    keras.utils.set_random_seed(7)
    model = models.small_cnn(name="shared")
    x = rng.uniform(0, 1, (3, 32, 32, 3)).astype("float32")
    other = rng.uniform(0, 1, (5, 32, 32, 3)).astype("float32")
    expected = fresh_cam(model, x, layer="conv_a", class_index=[0, 1, 2])
    stop, errors = threading.Event(), []

    def busy(action):
        try:
            while not stop.is_set():
                action()
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    callers = [
        threading.Thread(target=busy, args=(lambda: model(other),)),
        threading.Thread(target=busy, args=(lambda: model.predict(other, verbose=0),)),
    ]
    if keras.backend.backend() == "jax":  # Keras's JAX predict takes the weights out of the model while it runs, so
        callers = callers[1:]  # a plain model(x) beside it fails in Keras itself; camwidget waits for them
    for t in callers:
        t.start()
    try:
        results = []
        for _ in range(12):  # new layers and traces while the others run, then cached passes
            for layer in ("conv_a", "conv_b", "pool_a"):
                results.append((layer, cw.compute_cam(model, x, layer=layer, class_index=[0, 1, 2])))
    finally:
        stop.set()
        for t in callers:
            t.join()
    assert not errors, errors
    for layer, got in results:
        if layer == "conv_a":
            np.testing.assert_allclose(got, expected, atol=1e-5)

    # training in another thread: every map is finite and in [0, 1]; once training ends, the next equals fresh
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="sparse_categorical_crossentropy")
    trainer = threading.Thread(target=lambda: model.fit(other, np.arange(5) % 3, epochs=30, verbose=0))
    trainer.start()
    during = [cw.compute_cam(model, x, layer="conv_b", class_index=1) for _ in range(10)]
    trainer.join()
    assert all(np.isfinite(m).all() and m.min() >= 0 and m.max() <= 1 for m in during)
    np.testing.assert_allclose(
        cw.compute_cam(model, x, layer="conv_b", class_index=1),
        fresh_cam(model, x, layer="conv_b", class_index=1),
        atol=1e-5,
    )


def test_explorer_views_while_another_thread_calls_the_model(rng):
    model = models.small_cnn(name="shared_explorer")
    pictures = [rng.integers(0, 256, (32, 32, 3), dtype=np.uint8) for _ in range(2)]
    ex = cw.CAMExplorer(model, pictures, preprocess="none")
    stop = threading.Event()
    other = rng.uniform(0, 255, (4, 32, 32, 3)).astype("float32")
    caller = threading.Thread(target=lambda: [model(other) for _ in iter(stop.is_set, True)])
    caller.start()
    try:
        seen = []
        for layer in ("conv_a", "pool_a", "conv_b"):
            for index in (0, 1):
                ex.image_index = index
                ex.layer = layer
                seen.append((index, layer, ex.class_index, ex.cam))
    finally:
        stop.set()
        caller.join()
    for index, layer, c, cam in seen:
        np.testing.assert_allclose(
            cam, fresh_cam(model, ex.session.model_input(index), layer=layer, class_index=c)[0], atol=1e-5
        )
    ex.close()


# -- one path, options, bad input ------------------------------------------------------------------------------


def test_explorer_offers_score_and_smoothing_and_matches_compute_cam(small, rng):
    picture = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
    ex = cw.CAMExplorer(small, picture, score="probability", eigen_smooth=True, class_index=1)
    x = ex.session.model_input(0)
    kwargs = dict(layer=ex.layer, class_index=1, score="probability", eigen_smooth=True)
    np.testing.assert_allclose(ex.cam, cw.compute_cam(small, x, **kwargs)[0], atol=1e-6)
    ex.aug_smooth = True
    np.testing.assert_allclose(ex.cam, cw.compute_cam(small, x, aug_smooth=True, **kwargs)[0], atol=1e-6)
    ex.score = "auto"
    ex.eigen_smooth = False
    ex.aug_smooth = False
    np.testing.assert_allclose(ex.cam, cw.compute_cam(small, x, layer=ex.layer, class_index=1)[0], atol=1e-6)
    with pytest.raises(CAMError, match="score must be one of"):
        ex.score = "softmax"
    with pytest.raises(TypeError, match="aug_smooth must be True or False"):
        ex.aug_smooth = "yes"
    assert ex.score == "auto" and ex.aug_smooth is False
    ex.close()


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        (dict(max_side=10), CAMError, "max_side must be at least 32"),
        (dict(max_side=512.0), TypeError, "max_side must be an int"),
        (dict(score="logit"), ValueError, "score must be one of"),
        (dict(eigen_smooth=1), TypeError, "eigen_smooth must be True or False"),
    ],
)
def test_new_arguments_are_checked(small, rng, kwargs, error, message):
    with pytest.raises(error, match=message):
        cw.CAMExplorer(small, rng.integers(0, 256, (32, 32, 3), dtype=np.uint8), **kwargs)


def test_options_are_checked():
    with pytest.raises(ValueError, match="max_channels must be a positive int"):
        Options(max_channels=0).checked()
    assert Options(method="Grad-CAM++".lower().replace("grad-cam++", "gradcam++")).checked().method == "gradcam++"


def test_free_size_model_sees_at_most_max_side(rng):
    inp = keras.Input((None, None, 3))
    x = keras.layers.Conv2D(4, 3, strides=2, activation="relu", name="c1")(inp)
    x = keras.layers.Conv2D(4, 3, activation="relu", name="c2")(x)
    out = keras.layers.Dense(2, activation="softmax")(keras.layers.GlobalAveragePooling2D()(x))
    model = keras.Model(inp, out)
    big = rng.integers(0, 256, (600, 900, 3), dtype=np.uint8)
    ex = cw.CAMExplorer(model, big, max_side=300, preprocess="none")
    assert ex.session.model_input(0).shape == (1, 200, 300, 3)
    assert "resized from 900×600 to 300×200 for the model (max_side=300)" in ex.status_text
    assert ex.overlay.shape == (600, 900, 3)  # shown at the picture's own size
    ex.close()


def test_private_keras_api_missing_gives_a_full_pass_not_an_error(monkeypatch, small, rng):
    from camwidget import keras_private

    def changed(*args, **kwargs):
        raise AttributeError("'Functional' object has no attribute '_nodes_by_depth'")

    monkeypatch.setattr(keras_private, "_tail", changed)
    picture = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
    ex = cw.CAMExplorer(small, picture)
    for c in range(3):
        ex.class_index = c
        np.testing.assert_allclose(
            ex.cam, cw.compute_cam(small, ex.session.model_input(0), layer=ex.layer, class_index=c)[0], atol=1e-6
        )
    assert "✖" not in ex.status_text
    ex.close()


@pytest.mark.slow
@pytest.mark.tensorflow_only  # the warning is tf.function's; a JAX or torch pass has no such log
def test_no_retracing_warning_when_visiting_many_layers(caplog, rng):
    model = keras.applications.MobileNetV2(weights=None, input_shape=(64, 64, 3), classes=3)
    x = rng.uniform(-1, 1, (1, 64, 64, 3)).astype("float32")
    with caplog.at_level("WARNING"):
        for layer in cw.spatial_layers(model)[::16]:  # 10 layers: TF warns from the 6th retrace of one function
            cw.compute_cam(model, x, layer=layer)
    assert not [r for r in caplog.records if "retracing" in r.getMessage()]


def test_explorer_follows_a_new_head_and_a_removed_layer(rng):
    model = models.sequential_cnn()
    picture = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
    ex = cw.CAMExplorer(model, picture, preprocess="none", layer="s_conv_a", class_index=2)
    model.pop()
    model.pop()
    model.pop()  # s_dense, s_flat and s_conv_b gone
    model.add(keras.layers.GlobalAveragePooling2D(name="s_gap"))
    model.add(keras.layers.Dense(5, activation="softmax", name="s_head5"))
    ex.class_index = 4  # a class the new head has and the old one did not
    x = ex.session.model_input(0)
    np.testing.assert_allclose(ex.cam, fresh_cam(model, x, layer="s_conv_a", class_index=4)[0], atol=1e-5)
    assert [v for _, v in ex.controls["layer"].options] == cw.spatial_layers(model)
    assert len(ex.controls["class"].options) == 5 and "✖" not in ex.status_text
    ex.close()


def test_explorer_says_when_its_layer_left_the_model(rng):
    model = models.sequential_cnn()
    picture = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
    ex = cw.CAMExplorer(model, picture, preprocess="none", layer="s_conv_b")
    model.pop()
    model.pop()
    model.pop()
    model.add(keras.layers.GlobalAveragePooling2D(name="s_gap"))
    model.add(keras.layers.Dense(3, activation="softmax", name="s_head3"))
    cam = ex.cam  # the next view: the layer is gone
    assert ex.layer == cw.default_layer(model) and "s_conv_b is no longer in the model" in ex.status_text
    np.testing.assert_allclose(cam, fresh_cam(model, ex.session.model_input(0), layer=ex.layer)[0], atol=1e-5)
    ex.close()


def test_the_warm_up_makes_every_layer_ready_and_never_serves_a_changed_model(trainable_cnn, batch):
    model = trainable_cnn
    pictures = [(x * 255).astype(np.uint8) for x in batch[:2]]
    ex = cw.CAMExplorer(model, pictures, preprocess=lambda p: p / 255.0, class_index=1)
    ex.session.wait_for_warm_ups()
    calls = ex.session.model_calls
    x = ex.session.model_input(0)
    for layer in ("conv_a", "pool_a", "conv_b"):
        np.testing.assert_allclose(
            explorer_cam(ex, layer), fresh_cam(model, x, layer=layer, class_index=1)[0], atol=1e-5
        )
    assert ex.session.model_calls == calls and ex.session.warm_up_passes >= 1
    ex.image_index = 1  # a new image: its warm-up starts, and the weights change while it may run
    _set_weights(model, batch)
    ex.session.wait_for_warm_ups()
    x = ex.session.model_input(1)
    for layer in ("conv_a", "conv_b"):
        np.testing.assert_allclose(
            explorer_cam(ex, layer), fresh_cam(model, x, layer=layer, class_index=1)[0], atol=1e-5
        )
    ex.close()


def test_without_warm_up_a_switch_computes_on_demand(small, rng):
    ex = cw.CAMExplorer(small, rng.integers(0, 256, (32, 32, 3), dtype=np.uint8), warm_up=False)
    calls = ex.session.model_calls
    ex.layer = "conv_a"
    assert ex.session.model_calls == calls + 1 and ex.session.warm_up_passes == 0
    ex.close()
