"""camwidget.engines.tensorflow_layout: layer discovery by a dry run over the traced graph, and the logits
under a final softmax; camwidget.engines.capture: the capture reads only its own thread's calls."""

import threading

import models
import numpy as np
import pytest
import tensorflow as tf

from camwidget.engines import capture, tensorflow_layout
from camwidget.errors import LayerError


def test_dry_run_describes_layers_in_forward_order():
    layout = tensorflow_layout.describe_model(models.nested_three_deep(), (32, 32, 3))
    assert layout.spatial_paths() == ["middle/inner/deep_conv", "middle/mid_conv"]
    assert layout.default_path() == "middle/mid_conv"
    assert layout.output_activations == ["softmax"] and layout.nested_models == ["middle", "middle/inner"]
    with pytest.raises(LayerError, match="'middle' is a nested model"):
        layout.resolve("middle")


def test_capture_reports_only_its_own_threads_calls():
    model = models.small_cnn(name="captured")
    conv = model.get_layer("conv_a")
    seen, stop = [], threading.Event()
    x = np.zeros((1, 32, 32, 3), np.float32)
    other = threading.Thread(target=lambda: [model(x) for _ in iter(stop.is_set, True)])
    other.start()
    try:
        with capture.capturing({"conv_a": conv}, lambda path, out: seen.append(path)):
            for _ in range(5):
                model(x)
    finally:
        stop.set()
        other.join()
    assert seen == ["conv_a"] * 5
    assert "call" not in vars(conv)  # put back


def test_final_activation_finds_the_logits_through_reshapes():
    @tf.function
    def run(x):
        logits = x * 2.0
        y = tf.reshape(tf.nn.softmax(logits), (-1, 1, 1, 3))
        kind, before = tensorflow_layout.final_activation(y)
        return tf.constant(kind or ""), before

    kind, before = run(tf.ones((2, 3)))
    assert kind.numpy() == b"softmax"
    np.testing.assert_allclose(before.numpy().reshape(2, 3), 2.0)
