"""The TensorFlow engine's dry run: trace the model once on a symbolic input (which computes nothing) and
walk the traced graph: every layer's output shape, how often it is called, the call order, whether the model's
outputs depend on it, and where each output's final softmax or sigmoid is (its logits)."""

from __future__ import annotations

from typing import Any

import keras

from camwidget import keras_private
from camwidget.engines.capture import capturing
from camwidget.engines.layout import ModelLayout, layer_infos, output_names, readable_layers, refused
from camwidget.errors import CAMError
from camwidget.inputs.feed import Feed
from camwidget.tensorflow_lazy import tf

# Graph ops that pass values through unchanged in order; walked over to find a softmax or sigmoid.
_PASS_THROUGH_OPS = ("Identity", "Reshape", "Squeeze", "ExpandDims", "Cast")


def final_activation(tensor: tf.Tensor) -> tuple[str | None, tf.Tensor]:
    """("softmax" | "sigmoid" | None, the tensor before that activation) for a traced graph tensor.

    Walks back over ops that only reshape or cast, so a Dense(activation="softmax"), an Activation or Softmax
    layer, and a softmax followed by a reshape are all found; the model is not touched.
    """
    op = tensor.op
    while op.type in _PASS_THROUGH_OPS and op.inputs:
        op = op.inputs[0].op
    kind = {"Softmax": "softmax", "Sigmoid": "sigmoid"}.get(op.type)
    if kind is None:
        return None, tensor
    before = op.inputs[0]
    return kind, tf.reshape(tf.cast(before, tensor.dtype), tf.shape(tensor))


def _before_activation(tensor: tf.Tensor) -> tf.Tensor:
    """The graph tensor a final softmax or sigmoid was applied to (walking back over reshapes), else itself."""
    op = tensor.op
    while op.type in _PASS_THROUGH_OPS and op.inputs:
        op = op.inputs[0].op
    return op.inputs[0] if op.type in ("Softmax", "Sigmoid") else tensor


def _depends_on(outputs: list[tf.Tensor]) -> set[str]:
    """Names of every graph tensor the outputs are computed from."""
    seen: set[str] = set()
    stack = [t for t in outputs]
    while stack:
        t = stack.pop()
        if t.name in seen:
            continue
        seen.add(t.name)
        stack.extend(t.op.inputs)
    return seen


def describe_model(model: keras.Model, input_shape: tuple[int, ...], feed: Feed | None = None) -> ModelLayout:
    """Trace the model once on a symbolic (None, *input_shape) input (and the feed's other inputs) and describe
    its layers. Nothing is computed: the traced graph is walked.

    Args:
        model: the model (unchanged).
        input_shape: one input item's shape, (H, W, C) for images.
        feed: the model's other inputs, for a model with several.

    Returns:
        The :class:`camwidget.engines.layout.ModelLayout`.

    Raises:
        CAMError: the model refused an input of this shape (the first line of why).
    """
    layers = readable_layers(model)
    records: dict[str, list[Any]] = {p: [] for p in layers}
    order: list[str] = []
    result: dict[str, Any] = {}

    def on_output(path: str, output: Any) -> None:
        records[path].append(output)
        order.append(path)

    def probe(x: tf.Tensor, *others: tf.Tensor) -> list[tf.Tensor]:
        with capturing(layers, on_output):
            raw = model(x if feed is None else feed.pack(x, others), training=False)
        outputs = tf.nest.flatten(raw)
        result["outputs"] = outputs
        result["names"] = output_names(model, raw, len(outputs))
        result["needed"] = _depends_on(outputs)
        result["activations"] = [final_activation(t)[0] for t in outputs]
        result["ends"] = {t.name for t in outputs} | {_before_activation(t).name for t in outputs}
        return outputs

    spec = tf.TensorSpec((None, *input_shape), tf.float32)
    try:
        tf.function(probe).get_concrete_function(spec, *feed_specs(feed))
    except CAMError:
        raise
    except Exception as exc:  # the model itself refused this input
        raise refused(exc, input_shape) from exc

    infos = layer_infos(
        layers,
        records,
        order,
        input_shape,
        lambda t: isinstance(t, tf.Tensor),
        reaches=lambda path, t: t.name in result["needed"],
        is_end=lambda t: t.name in result["ends"],
    )
    outputs = result["outputs"]
    return ModelLayout(
        input_shape=tuple(input_shape),
        layers=infos,
        output_names=result["names"],
        output_shapes=[tuple(t.shape[1:]) for t in outputs],
        output_activations=result["activations"],
        nested_models=[p for p, l in keras_private.walk_layers(model) if isinstance(l, keras.Model)],
    )


def feed_specs(feed: Feed | None) -> list[Any]:
    """The tf.TensorSpec of each other input of a model with several (its item shape, any batch size)."""
    return [] if feed is None else [tf.TensorSpec((None, *o.shape[1:]), tf.as_dtype(o.dtype)) for o in feed.others]
