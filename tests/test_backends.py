"""camwidget on every Keras backend: TensorFlow, JAX and PyTorch.

The backend is chosen once, when Keras is imported, so the JAX and torch runs are fresh processes
(`test_the_suite_passes_on`, at the end): each runs this file, test_exact.py (every kind of model against a
hand split differentiated by that backend's own autodiff), test_methods.py, test_methods_<module>.py and
test_methods_added.py (each method's formula, each method on each kind of model), test_explain.py and
test_explain_explainer.py (the model as it is now, threads), and the JAX and torch modules' own tests
(test_engines_portable.py, test_engines_jax_autodiff.py, test_engines_torch_autodiff.py, marked `backends`:
skipped in the TensorFlow run) with KERAS_BACKEND set, and with TensorFlow made impossible to import, as where
only camwidget[jax] or camwidget[torch] is installed. The main run checks the same files on TensorFlow.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import keras
import models
import numpy as np
import pytest
from keras import layers, ops
from reference import gradient

import camwidget as cw

BACKEND = keras.backend.backend()
TESTS = Path(__file__).parent
JAX_DIR = TESTS / ".jax"  # where tests/install_peers.sh puts JAX


def test_the_explorer_equals_compute_cam_on_the_nested_composite(composite_b, rng):
    pictures = [rng.integers(0, 256, (64, 64, 3), dtype=np.uint8) for _ in range(2)]
    ex = cw.CAMExplorer(composite_b, pictures, preprocess="none")
    seen = []
    for layer in ("vgg16/block5_conv3", "head/head_conv"):
        ex.layer = layer
        for index in (1, 0):
            ex.image_index = index
            for c in (0, 3):
                ex.class_index = c
                x = pictures[index].astype(np.float32)[None]
                expected = cw.compute_cam(composite_b, x, layer=layer, class_index=c)[0]
                np.testing.assert_allclose(ex.cam, expected, atol=1e-5)
                seen.append(expected.max())
    assert max(seen) > 0, "every map compared was zero: the comparison would prove nothing"
    assert "✖" not in ex.status_text
    ex.close()


@pytest.mark.parametrize("make", [models.vgg_composite_nested, lambda: models.small_cnn(final="activation_softmax")])
def test_the_model_is_left_as_it_was(make, rng):
    """The capture replaces call() and the final layer's activation for a pass: both are put back."""
    model = make()
    size = model.input_shape[1]
    x = rng.uniform(0, 1, (2, size, size, 3)).astype("float32")
    before = models.snapshot(model, x)
    cw.compute_cam(model, x)
    ex = cw.CAMExplorer(model, [(p * 255).astype(np.uint8) for p in x], preprocess="none")
    ex.class_index = 1
    ex.close()
    models.assert_same(before, models.snapshot(model, x))


def test_a_target_is_differentiated_by_the_backend(rng):
    """A regression output and target=Unit(1): the map is Grad-CAM of out[:, 1] (a hand split, the backend's
    own gradient)."""
    inp = keras.Input((16, 16, 3))
    a = layers.Conv2D(6, 3, padding="same", activation="relu", name="conv")(inp)
    out = layers.Dense(2, name="reg")(layers.GlobalAveragePooling2D(name="gap")(a))
    model = keras.Model(inp, out)
    x = rng.uniform(0, 1, (3, 16, 16, 3)).astype("float32")
    A = keras.Model(inp, a)(x)
    g = gradient(lambda t: ops.sum(model.get_layer("reg")(model.get_layer("gap")(t))[:, 1]), A)
    raw = (ops.convert_to_numpy(A) * g.mean(axis=(1, 2), keepdims=True)).sum(-1)
    cam = cw.compute_cam(model, x, layer="conv", target=cw.targets.Unit(1), normalize=False)
    assert np.abs(raw).max() > 0
    np.testing.assert_allclose(cam, raw, atol=1e-4 * np.abs(raw).max())


def test_a_segmentation_class_is_its_predicted_pixels(rng):
    """Per-pixel class scores (N, H, W, C): class c scores the sum of its logits over the pixels predicted c."""
    inp = keras.Input((12, 12, 3))
    a = layers.Conv2D(5, 3, padding="same", activation="relu", name="conv")(inp)
    out = layers.Conv2D(3, 1, activation="softmax", name="seg")(a)
    model = keras.Model(inp, out)
    x = rng.uniform(0, 1, (2, 12, 12, 3)).astype("float32")
    A = keras.Model(inp, a)(x)
    seg = model.get_layer("seg")
    logits = ops.convert_to_numpy(ops.stop_gradient(ops.conv(A, seg.kernel, padding="same") + seg.bias))
    predicted = logits.argmax(-1)
    for c in range(3):
        if not (predicted == c).any():
            continue
        mask = (predicted == c).astype("float32")[..., None] * np.eye(3, dtype="float32")[c]
        g = gradient(
            lambda t: ops.sum((ops.conv(t, seg.kernel, padding="same") + seg.bias) * ops.convert_to_tensor(mask)), A
        )
        raw = (ops.convert_to_numpy(A) * g.mean(axis=(1, 2), keepdims=True)).sum(-1)
        cam = cw.compute_cam(model, x, layer="conv", class_index=c, normalize=False)
        np.testing.assert_allclose(cam, raw, atol=1e-4 * max(np.abs(raw).max(), 1e-6))


def test_what_needs_tensorflow_says_so_naming_the_backend(small, rng):
    x = rng.uniform(0, 1, (2, 32, 32, 3)).astype("float32")
    if BACKEND == "tensorflow":
        assert np.isfinite(cw.compute_cam(small, x, method="guided-gradcam")).all()
        return
    with pytest.raises(
        ValueError, match=f"Guided Grad-CAM .* needs the TensorFlow backend, and Keras runs on '{BACKEND}'"
    ):
        cw.compute_cam(small, x, method="guided-gradcam")


def test_deletion_and_insertion_follow_their_definition(small, rng):
    """Against a loop written here: P pixels, floor(k P / steps) most relevant replaced at step k, scored by the
    model's own softmax."""
    x = rng.uniform(0, 1, (2, 32, 32, 3)).astype("float32")
    maps = rng.random((2, 8, 8)).astype("float32")
    up = np.stack([cw.metrics._resize(m, 32, 32) for m in maps])
    base = x.mean(axis=(1, 2), keepdims=True) * np.ones_like(x)
    for kind in ("deletion", "insertion"):
        curve = getattr(cw.metrics, kind)(small, x, maps, steps=4, baseline="mean", class_index=1)
        for i in range(2):
            order = np.argsort(-up[i].ravel(), kind="stable")
            for k in range(5):
                n = int(np.floor(k * 32 * 32 / 4))
                start, fill = (x[i], base[i]) if kind == "deletion" else (base[i], x[i])
                copy = start.reshape(-1, 3).copy()
                copy[order[:n]] = fill.reshape(-1, 3)[order[:n]]
                want = ops.convert_to_numpy(ops.stop_gradient(small(copy.reshape(1, 32, 32, 3))))[0, 1]
                assert abs(curve.scores[i, k] - want) < 1e-5


def test_keras_backend_set_after_keras_was_imported_names_both(small, rng, monkeypatch):
    other = "jax" if BACKEND != "jax" else "torch"
    monkeypatch.setenv("KERAS_BACKEND", other)
    with pytest.raises(
        ValueError, match=rf"KERAS_BACKEND is '{other}', but Keras .* runs on '{BACKEND}'.*before the first import"
    ):
        cw.compute_cam(small, rng.uniform(0, 1, (1, 32, 32, 3)).astype("float32"))


@pytest.mark.slow
@pytest.mark.tensorflow_only  # starts the other backends' processes from the TensorFlow run
def test_a_model_built_under_another_backend_names_both():
    script = """
import numpy as np, keras
model = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Conv2D(2, 3), keras.layers.GlobalAveragePooling2D(),
                          keras.layers.Dense(2)])
keras.config.set_backend("torch")
import camwidget as cw
try:
    cw.compute_cam(model, np.zeros((1, 8, 8, 3), np.float32))
except ValueError as exc:
    print("ERROR:", exc)
"""
    env = {**os.environ, "KERAS_BACKEND": "tensorflow", "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run(
        [sys.executable, "-W", "ignore", "-c", script], env=env, capture_output=True, text=True, timeout=300
    )
    assert "ERROR: this model was built under the 'tensorflow' backend, but Keras now runs on 'torch'" in done.stdout, (
        done.stdout + done.stderr[-3000:]
    )


# The other backends' runs: (the files, the least number of tests that must pass there).
SUITE = ["test_backends.py", "test_exact.py", "test_methods.py", "test_explain.py", "test_explain_explainer.py"]
SUITE += [f"test_methods_{module}.py" for module in ("gradient", "perturbation", "activation", "baseline")]
SUITE += [f"test_methods_{module}.py" for module in ("model_based", "scaling", "registry", "added")]
SUITE += ["test_engines_portable.py", "test_engines_jax_autodiff.py", "test_engines_torch_autodiff.py"]  # theirs alone


@pytest.mark.slow
@pytest.mark.tensorflow_only  # starts the other backends' processes from the TensorFlow run
@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_the_suite_passes_on(backend):
    env = {**os.environ, "KERAS_BACKEND": backend, "CAMWIDGET_TESTS_WITHOUT_TENSORFLOW": "1"}
    if backend == "jax":  # JAX lives in its own folder: TensorFlow would import it in every other process
        assert (JAX_DIR / "jax").is_dir(), f"JAX is not in {JAX_DIR}: run sh tests/install_peers.sh"
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(JAX_DIR), os.environ.get("PYTHONPATH")]))
        # XLA compiles each small test model in well under a second unoptimised, and the tests' pictures run
        # as fast: the JAX run takes about 145 s optimised, 115 s so (the same tests, the same tolerances)
        env["XLA_FLAGS"] = "--xla_backend_optimization_level=0 --xla_llvm_disable_expensive_passes=true"
    command = [sys.executable, "-m", "pytest", "-q", "-n", "0", "-p", "no:cacheprovider", "-m", "not tensorflow_only"]
    command += SUITE  # in one process (-n 0): the outer run already keeps every core busy
    done = subprocess.run(command, cwd=TESTS, env=env, capture_output=True, text=True, timeout=1200)
    summary = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else ""
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-3000:]
    passed = int(re.search(r"(\d+) passed", summary).group(1))
    assert passed >= 75 and "skipped" not in summary, summary


def test_the_explorer_checks_its_map_with_a_randomised_copy(small, rng):
    ex = cw.CAMExplorer(small, rng.integers(0, 256, (40, 40, 3), dtype=np.uint8))
    check = ex.check(randomize=True)
    for curve in (check.deletion, check.insertion, check.random_deletion, check.random_insertion):
        assert np.isfinite(curve.scores).all() and 0 <= curve.area <= 1
    assert check.randomization is not None
    assert "✖" not in ex.status_text, ex.status_text
    ex.close()


def test_a_copy_made_during_a_capture_keeps_the_softmax(small):
    """The capture's stand-in for the last layer's activation has its name: a clone_model or save made in another
    thread meanwhile (the explorer's warm-up runs in one) still reads "softmax"."""
    from camwidget.engines.capture import capturing

    dense = small.get_layer("dense")
    with capturing({}, lambda path, out: None, activations={"dense": dense}, on_activation=lambda p, z: None):
        assert dense.activation is not keras.activations.softmax
        assert dense.get_config()["activation"] == "softmax"
        assert keras.models.clone_model(small).get_layer("dense").activation is keras.activations.softmax
    assert dense.activation is keras.activations.softmax


GRADIENT_METHODS = ("gradcam", "gradcam++", "hirescam", "xgradcam", "layercam")


@pytest.mark.parametrize("normalize", [True, False])
def test_a_method_computed_inside_the_pass_equals_its_formula_on_the_host(small, rng, normalize):
    """On JAX and torch compute_cam runs a gradient method's formula inside the backend's pass (keras.ops,
    float32, on the GPU where there is one); the explorer's path, and TensorFlow's always, runs it on the
    captured A and G in NumPy."""
    from camwidget.explain import Explainer, Options

    x = rng.uniform(0, 1, (3, 32, 32, 3)).astype("float32")
    probe = Explainer(small, layer="conv_b")
    info = probe.resolve(probe.layout(x.shape[1:]))[0]
    assert probe.fused(info) == (BACKEND != "tensorflow")
    for method in GRADIENT_METHODS:
        inside = cw.compute_cam(small, x, layer="conv_b", method=method, class_index=[0, 1, 2], normalize=normalize)
        host = Explainer(small, layer="conv_b", options=Options(method=method, normalize=normalize))
        host.fused = lambda info: False
        want = host.explain(x, [0, 1, 2])
        assert np.abs(want).max() > 0, method
        np.testing.assert_allclose(inside, want, rtol=1e-4, atol=1e-5 * np.abs(want).max(), err_msg=method)


def test_a_batch_that_is_a_backend_tensor_stays_one_and_gives_the_same_maps(small, rng, monkeypatch):
    """A jax.Array or torch tensor (on the GPU, say) goes into the pass as it is, so only the maps come back to
    the host; a TensorFlow tensor is read as NumPy, as before. Either gives the maps of the NumPy batch."""
    from camwidget.engines import engine_for

    x = rng.uniform(0, 1, (3, 32, 32, 3)).astype("float32")
    engine = engine_for(small)
    entry = "capture_maps" if engine.maps_in_pass else "capture"  # TensorFlow: the capture of A and G
    seen, original = [], getattr(engine, entry)
    monkeypatch.setattr(engine, entry, lambda x, *a, **k: seen.append(type(x)) or original(x, *a, **k))
    tensor = ops.convert_to_tensor(x)
    np.testing.assert_allclose(
        cw.compute_cam(small, tensor, layer="conv_b"), cw.compute_cam(small, x, layer="conv_b"), atol=1e-6
    )
    kept = np.ndarray if BACKEND == "tensorflow" else type(tensor)
    assert seen[0] is kept and seen[1] is np.ndarray, seen  # handed to the pass as it was given
    for method in ("eigencam", "scorecam"):  # no formula: the batch is read into NumPy first
        np.testing.assert_allclose(
            cw.compute_cam(small, tensor, method=method), cw.compute_cam(small, x, method=method), atol=1e-5
        )
    np.testing.assert_allclose(
        cw.compute_cam(small, ops.convert_to_tensor(x[0]), layer="conv_b")[0],
        cw.compute_cam(small, x[:1], layer="conv_b")[0],
        atol=1e-6,
    )  # one image
    bad = x.copy()
    bad[1, 3, 4, 0] = np.nan
    bad[2, 0, 0, 1] = -np.inf
    for method in ("gradcam", "eigencam"):  # JAX, torch: checked inside the pass; else read into NumPy, checked
        for given in (bad, ops.convert_to_tensor(bad)):
            with pytest.raises(ValueError, match=r"images contain 2 NaN or infinite value"):
                cw.compute_cam(small, given, method=method)
    with pytest.raises(
        ValueError, match=r"aug_smooth multiplies the images by 1.1, and their largest value \(3.2e\+38\)"
    ):
        cw.compute_cam(small, np.full((1, 32, 32, 3), 3.2e38, np.float32), aug_smooth=True)
    with pytest.raises(
        ValueError, match=r"images has shape \(1, 3, 32, 32, 3\); expected \(N, height, width, channels\)"
    ):
        cw.compute_cam(small, ops.convert_to_tensor(x[None]))


def test_tensorflow_is_imported_only_where_it_runs(small, rng):
    """camwidget reads TensorFlow through a stand-in that imports it on first use: on JAX and torch it never is
    (the JAX and torch runs of this file make it impossible to import), on TensorFlow it is the module."""
    from camwidget.tensorflow_lazy import tf

    cw.compute_cam(small, rng.uniform(0, 1, (1, 32, 32, 3)).astype("float32"))
    ex = cw.CAMExplorer(small, rng.integers(0, 256, (32, 32, 3), dtype=np.uint8))
    ex.close()
    if BACKEND == "tensorflow":
        import tensorflow

        assert tf.constant is tensorflow.constant
    else:
        assert sys.modules.get("tensorflow") is None, "TensorFlow was imported on " + BACKEND


def test_an_output_that_does_not_depend_on_the_layer_is_refused_not_shown_empty(rng):
    """Two branches, each with its own output: TensorFlow's tape has no gradient there, JAX's gradient is zero
    (an empty map), torch's is missing; each backend says the same."""
    inputs = keras.Input((16, 16, 3))
    branches = [layers.Conv2D(4, 3, activation="relu", name=name)(inputs) for name in ("branch_a", "branch_b")]
    heads = [layers.Dense(2, name=f"out_{i}")(layers.GlobalAveragePooling2D()(b)) for i, b in enumerate(branches)]
    model = keras.Model(inputs, heads)
    x = rng.uniform(0, 1, (2, 16, 16, 3)).astype("float32")
    assert np.abs(cw.compute_cam(model, x, layer="branch_a", output="out_0", normalize=False)).max() > 0
    for method in ("gradcam", "eigencam"):
        with pytest.raises(ValueError, match=r"output 1 does not depend on layer 'branch_a'; choose another layer"):
            cw.compute_cam(model, x, layer="branch_a", output="out_1", method=method)


TAILED_MODELS = {
    "dense softmax": (lambda: models.small_cnn(name="tail_a"), "conv_b"),
    "activation softmax": (lambda: models.small_cnn(final="activation_softmax", name="tail_b"), "conv_b"),
    "softmax layer": (lambda: models.small_cnn(final="softmax_layer", name="tail_c"), "conv_b"),
    "sigmoid": (lambda: models.small_cnn(final="sigmoid", name="tail_d"), "conv_b"),
    "below a pooling layer": (lambda: models.small_cnn(name="tail_e"), "conv_a"),
    "three deep": (lambda: models.nested_three_deep(), "middle/inner/deep_conv"),
}


@pytest.mark.parametrize("kind", list(TAILED_MODELS))
def test_a_class_switch_runs_only_the_layers_after_with_the_weights_as_they_are_now(kind, rng):
    """The explorer's view of a class other than the top one reuses the layer's activations from the top
    class's pass and runs only the layers after it (JAX: a compiled tail that takes the weights as arguments;
    torch: eagerly; TensorFlow: its tail pass). Its map equals compute_cam's, also after the weights changed
    under a tail already compiled (nothing traced again)."""
    from camwidget.engines import engine_for

    build, layer = TAILED_MODELS[kind]
    model = build()
    image = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
    traced, explorers = None, []
    for changed in (False, True):
        if changed:
            model.set_weights([w * 1.3 + 0.01 for w in model.get_weights()])
        ex = cw.CAMExplorer(model, image, layer=layer, warm_up=False)  # kept open: close() drops the passes
        explorers.append(ex)
        x = ex.session.model_input(0)
        probabilities = ops.convert_to_numpy(model(x))[0]
        if probabilities.shape == (1,):  # one sigmoid unit: classes 0 and 1
            probabilities = np.array([1 - probabilities[0], probabilities[0]])
        other = next(c for c in range(len(probabilities)) if c != int(np.argmax(probabilities)))
        ex.class_index = other
        assert "after-layer pass" in ex.status_text, ex.status_text
        np.testing.assert_allclose(ex.cam, cw.compute_cam(model, x, layer=layer, class_index=other)[0], atol=1e-5)
        raw = ex.session.view(0, layer, other, "gradcam").raw  # the map just drawn, before ReLU (cached)
        want = cw.compute_cam(model, x, layer=layer, class_index=other, normalize=False)[0]
        assert np.abs(want).max() > 0
        np.testing.assert_allclose(raw, want, rtol=1e-4, atol=1e-5 * np.abs(want).max(), err_msg=f"changed: {changed}")
        if changed:  # the tail compiled before the change served it
            assert engine_for(model).trace_count == traced
        traced = engine_for(model).trace_count
    for ex in explorers:
        ex.close()


def test_a_tail_that_cannot_run_gives_a_whole_pass_not_an_error(rng, monkeypatch):
    """Where Keras's graph does not run as read, a class switch falls back to running the whole model, with
    the same map and nothing wrong on the status line, on every backend."""
    from camwidget import keras_private

    def broken(model, path, output):
        def tail(activations):
            raise RuntimeError("the graph did not run as read")

        return tail

    monkeypatch.setattr(keras_private, "tail_function", broken)
    model = models.small_cnn(name="tail_broken")
    ex = cw.CAMExplorer(model, rng.integers(0, 256, (32, 32, 3), dtype=np.uint8), layer="conv_b", warm_up=False)
    x = ex.session.model_input(0)
    for other in (0, 1, 2):
        ex.class_index = other
        assert "after-layer pass" not in ex.status_text and "✖" not in ex.status_text, ex.status_text
        np.testing.assert_allclose(ex.cam, cw.compute_cam(model, x, layer="conv_b", class_index=other)[0], atol=1e-5)
    ex.close()
