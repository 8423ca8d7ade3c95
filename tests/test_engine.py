"""The engine's promises: the model is untouched, no NaN, no memory growth, the engine goes with its model, a
quiet import. (Cheap class switches: test_engines_base.py; no retracing: test_engines_tensorflow.py.)"""

from __future__ import annotations

import gc
import subprocess
import sys

import keras
import models
import numpy as np
import psutil
import pytest
from models import assert_same, snapshot

import camwidget as cw


@pytest.mark.parametrize("make", [models.vgg_composite_nested, models.small_cnn, models.sequential_cnn])
def test_model_is_unchanged(make, rng):
    model = make()
    size = model.input_shape[1]
    x = rng.uniform(0, 1, (2, size, size, 3)).astype("float32")
    model.get_layer(model.layers[-1].name).trainable = False  # a user's own flag must survive too
    before = snapshot(model, x)
    cw.spatial_layers(model)
    for layer in cw.spatial_layers(model)[-2:]:
        cw.compute_cam(model, x, layer=layer)
        cw.compute_cam(model, x, layer=layer, score="probability", class_index=0)
    assert_same(before, snapshot(model, x))


def test_model_unchanged_when_a_call_fails(small, rng):
    x = rng.uniform(0, 1, (1, 32, 32, 3)).astype("float32")
    before = snapshot(small, x)
    with pytest.raises(ValueError):
        cw.compute_cam(small, x, class_index=99)
    with pytest.raises(ValueError):
        cw.compute_cam(small, x, layer="nope")
    assert_same(before, snapshot(small, x))


def test_all_zero_map_stays_zero_and_never_nan():
    inp = keras.Input((16, 16, 3))
    dead = keras.layers.Conv2D(4, 3, padding="same", kernel_initializer="zeros", name="dead")(inp)
    out = keras.layers.Dense(3, activation="softmax")(keras.layers.GlobalAveragePooling2D()(dead))
    model = keras.Model(inp, out)
    x = np.random.default_rng(0).uniform(0, 1, (2, 16, 16, 3)).astype("float32")
    cam = cw.compute_cam(model, x)
    assert np.isfinite(cam).all() and (cam == 0).all()
    raw = cw.compute_cam(model, x, normalize=False)
    assert np.isfinite(raw).all()


def test_extreme_inputs_give_finite_maps(small):
    for value in (0.0, 1e4, -1e4):
        cam = cw.compute_cam(small, np.full((1, 32, 32, 3), value, np.float32))
        assert np.isfinite(cam).all() and cam.min() >= 0 and cam.max() <= 1


def test_200_calls_do_not_grow_memory(rng):
    model = models.small_cnn()
    x = rng.uniform(0, 1, (2, 32, 32, 3)).astype("float32")
    for _ in range(20):
        cw.compute_cam(model, x)
    gc.collect()
    process = psutil.Process()
    start = process.memory_info().rss
    for i in range(200):
        cw.compute_cam(model, x, class_index=i % 3)
    gc.collect()
    grown = (process.memory_info().rss - start) / 2**20
    assert grown < 20, f"memory grew by {grown:.1f} MB over 200 calls"


def test_engine_is_freed_with_the_model():
    import weakref

    model = models.small_cnn()
    cw.compute_cam(model, np.zeros((1, 32, 32, 3), np.float32))
    ref = weakref.ref(model)
    del model
    gc.collect()
    assert ref() is None


def test_import_is_quiet_and_opens_no_connection():
    code = (
        "import socket\n"
        "def refuse(*a, **k): raise AssertionError('network used on import')\n"
        "socket.socket.connect = refuse\n"
        "socket.create_connection = refuse\n"
        "import camwidget\n"
        "import sys\n"
        "assert 'tensorflow' not in sys.modules, 'TensorFlow imported eagerly'\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "" and done.stderr == ""
