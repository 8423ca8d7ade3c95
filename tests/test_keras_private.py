"""camwidget.keras_private: Keras's private API, each use with a fallback."""

import keras
import models
import numpy as np

from camwidget import keras_private


def test_walk_layers_names_nested_layers_by_path():
    paths = [p for p, _ in keras_private.walk_layers(models.nested_three_deep())]
    assert "middle/inner/deep_conv" in paths and "outer_dense" in paths


def test_tail_runs_only_the_layers_after_one():
    model = models.small_cnn(name="tailed")
    x = np.random.default_rng(0).uniform(0, 1, (2, 32, 32, 3)).astype("float32")
    conv_b = model.get_layer("conv_b")
    inner = keras.Model(model.inputs, conv_b.output)
    tail = keras_private.tail_function(model, "conv_b", 0)
    np.testing.assert_allclose(tail(inner(x)), model(x), atol=1e-6)
    assert [l.name for l in keras_private.layers_after(model, "conv_b", (16, 16, 16))] == ["gap", "dense"]


def test_without_keras_graph_internals_there_is_no_tail(monkeypatch):
    model = models.small_cnn(name="changed_keras")
    monkeypatch.setattr(
        type(model),
        "_nodes_by_depth",
        property(lambda self: (_ for _ in ()).throw(AttributeError("gone"))),
        raising=False,
    )
    assert keras_private.tail_function(model, "conv_b", 0) is None
    assert keras_private.layers_after(model, "conv_b", (16, 16, 16)) is None


def test_built_input_shape_and_training_argument():
    model = models.SubclassedCNN()
    assert keras_private.built_input_shape(model) is None
    model(np.zeros((1, 32, 32, 3), np.float32))
    assert keras_private.built_input_shape(model) == (1, 32, 32, 3)
    dropout = keras.layers.Dropout(0.5)
    out = keras_private.run_layer(dropout, np.ones((1, 100), np.float32))  # training=False: nothing dropped
    np.testing.assert_array_equal(out, np.ones((1, 100), np.float32))


def test_trainable_split_is_keras_own_lists_from_one_walk(monkeypatch):
    """The lists a JAX pass hands to stateless_call, in Keras's order, through every kind of trainable change;
    a model that defines its own lists is read through them."""
    from keras import layers

    inner = models.small_cnn(name="split_inner")
    outer = keras.Sequential([keras.Input((32, 32, 3)), inner, layers.BatchNormalization(), layers.Dense(2)])

    def same(model):
        trainable, non_trainable = keras_private.trainable_split(model)
        assert [id(v) for v in trainable] == [id(v) for v in model.trainable_variables]
        assert [id(v) for v in non_trainable] == [id(v) for v in model.non_trainable_variables]
        return len(trainable), len(non_trainable)

    counts = [same(outer)]
    inner.get_layer("conv_a").trainable = False
    counts.append(same(outer))
    outer.layers[-1].kernel.trainable = False  # one variable's own flag
    counts.append(same(outer))
    inner.trainable = False
    counts.append(same(outer))
    outer.trainable = False
    counts.append(same(outer))
    assert len(set(counts)) == 5 and counts[-1][0] == 0, counts  # each change moved variables between the lists

    class OwnLists(keras.Model):
        @property
        def trainable_variables(self):
            return list(reversed(super().trainable_variables))

    own = OwnLists(outer.inputs, outer.outputs)
    own.trainable = True
    for layer in own.layers:
        layer.trainable = True
    assert [id(v) for v in keras_private.trainable_split(own)[0]] == [id(v) for v in own.trainable_variables]
