"""camwidget.engines.tensorflow_layout: layer discovery by a dry run over the traced graph, and the logits
under a final softmax."""

import models
import numpy as np
import pytest
import tensorflow as tf

from camwidget.engines import tensorflow_layout
from camwidget.errors import LayerError


def test_dry_run_describes_layers_in_forward_order():
    layout = tensorflow_layout.describe_model(models.nested_three_deep(), (32, 32, 3))
    assert layout.spatial_paths() == ["middle/inner/deep_conv", "middle/mid_conv"]
    assert layout.default_path() == "middle/mid_conv"
    assert layout.output_activations == ["softmax"] and layout.nested_models == ["middle", "middle/inner"]
    with pytest.raises(LayerError, match="'middle' is a nested model"):
        layout.resolve("middle")


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
