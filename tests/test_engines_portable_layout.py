"""camwidget.engines.portable_layout: the dry run that follows each layer's tensors (JAX's and torch's) describes
every kind of model as TensorFlow's walk of the traced graph does (the same layers, shapes, default layer, outputs
and final activations), and finds each output's logits where they are written."""

from __future__ import annotations

import models
import pytest

from camwidget.engines import portable_layout, tensorflow_layout

KINDS = {
    "dense softmax": lambda: models.small_cnn(name="pl_a"),
    "activation softmax": lambda: models.small_cnn(final="activation_softmax", name="pl_b"),
    "softmax layer": lambda: models.small_cnn(final="softmax_layer", name="pl_c"),
    "sigmoid": lambda: models.small_cnn(final="sigmoid", name="pl_d"),
    "linear": lambda: models.small_cnn(final="linear", name="pl_e"),
    "sequential": models.sequential_cnn,
    "three deep": models.nested_three_deep,
    "two outputs": models.multi_output,
}
LOGITS = {
    "dense softmax": [("activation", "dense")],
    "activation softmax": [("input", "act")],
    "softmax layer": [("input", "softmax")],
    "sigmoid": [("activation", "dense")],
    "linear": [None],
    "sequential": [("activation", "s_dense")],
    "three deep": [("activation", "outer_dense")],
    "two outputs": [("activation", "kind"), ("activation", "colour")],
}


@pytest.mark.parametrize("kind", list(KINDS))
def test_the_dry_run_describes_a_model_as_the_graph_walk_does(kind):
    model = KINDS[kind]()
    ours = portable_layout.describe_model(model, (32, 32, 3))
    graph = tensorflow_layout.describe_model(model, (32, 32, 3))
    assert ours.spatial_paths() == graph.spatial_paths() and ours.spatial_paths()
    assert ours.default_path() == graph.default_path()
    assert {p: i.shape for p, i in ours.layers.items()} == {p: i.shape for p, i in graph.layers.items()}
    assert list(ours.layers) == list(graph.layers)  # forward order
    assert ours.output_names == graph.output_names and ours.output_shapes == graph.output_shapes
    assert ours.output_activations == graph.output_activations
    assert ours.nested_models == graph.nested_models
    assert ours.output_logits == LOGITS[kind]
