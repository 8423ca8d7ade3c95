"""The dry run of the engines without a graph to walk (JAX, torch): run the model once on one zero input and
follow the tensors each layer took and returned.

The logits: with no graph to walk, the dry run follows the model's output back to the layer that made it
(by identity of the tensors each layer returned) over Reshape / Flatten layers: a Softmax or Activation
layer's input, or what goes into a final layer's own softmax or sigmoid, read during the pass by replacing
that layer's ``activation`` for the pass (the model is unchanged after).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import keras
import numpy as np
from keras import ops

from camwidget import keras_private
from camwidget.engines.capture import capturing
from camwidget.engines.layout import ModelLayout, layer_infos, output_names, readable_layers, refused
from camwidget.errors import CAMError
from camwidget.inputs.feed import Feed

_PASS_THROUGH_LAYERS = (keras.layers.Reshape, keras.layers.Flatten, keras.layers.Identity)


def is_tensor(value: Any) -> bool:
    """Whether `value` is a backend tensor (not a NumPy array, not a structure of tensors)."""
    return hasattr(value, "shape") and hasattr(value, "dtype") and not isinstance(value, np.ndarray)


def pack(feed: Feed | None, x: Any, others: Sequence[Any]) -> Any:
    """What the model is called with: `x` alone, or with a feed, `x` at its input among `others`."""
    return x if feed is None else feed.pack(x, others)


def feed_rows(feed: Feed | None, n: int, image: int | None = None) -> list[np.ndarray]:
    """The feed's other inputs for `n` inputs (see :meth:`camwidget.inputs.feed.Feed.rows`); [] without a feed."""
    return [] if feed is None else feed.rows(n, image)


def describe_model(
    model: keras.Model,
    input_shape: tuple[int, ...],
    feed: Feed | None = None,
    dry_call: Callable[[keras.Model, Callable[..., Any]], Any] | None = None,
) -> ModelLayout:
    """Run the model once on one zero input (and the feed's other inputs) and describe its layers: what
    :func:`camwidget.engines.tensorflow_layout.describe_model` learns from a traced graph, learned from the
    tensors each layer takes and returns.

    Args:
        model: the model (unchanged).
        input_shape: one input item's shape, (H, W, C) for images.
        feed: the model's other inputs, for a model with several.
        dry_call: the backend's way to run it once (JAX: stateless, so no variable is written); None: a plain call.

    Returns:
        The :class:`camwidget.engines.layout.ModelLayout`, with each output's logits and sources.

    Raises:
        CAMError: the model refused an input of this shape.
    """
    layers = readable_layers(model)
    calls: dict[str, list[tuple[tuple[Any, ...], Any]]] = {p: [] for p in layers}
    order: list[str] = []
    pending: dict[str, tuple[Any, ...]] = {}

    def on_input(path: str, args: tuple[Any, ...]) -> None:
        pending[path] = args

    def on_output(path: str, out: Any) -> None:
        calls[path].append((pending.pop(path, ()), out))
        order.append(path)

    x = np.zeros((1, *input_shape), np.float32)
    first = feed_rows(feed, 1, image=0)  # the first image's other inputs (one row each), where there is one per image
    inputs = pack(feed, ops.convert_to_tensor(x), [ops.convert_to_tensor(r) for r in first])

    def attempt(call: Callable[[Any], Any]) -> Any:
        for seen in calls.values():
            seen.clear()
        order.clear()
        pending.clear()
        with capturing(layers, on_output, on_input=on_input):
            return call(inputs)

    try:
        if dry_call is None:
            raw = attempt(lambda inputs: model(inputs, training=False))
        else:
            raw = dry_call(model, attempt)
    except CAMError:
        raise
    except Exception as exc:  # the model itself refused this input
        raise refused(exc, input_shape) from exc
    outputs = keras.tree.flatten(raw)
    producer = {
        id(out): path for path, seen in calls.items() for _, result in seen for out in keras.tree.flatten(result)
    }

    def made(tensor: Any) -> str | None:
        return producer.get(id(tensor))

    logits = [_logit_source(y, made, layers, calls) for y in outputs]
    ends = {id(y) for y in outputs} | {id(t) for t in (_logit_tensor(s, calls) for s in logits) if t is not None}
    needed = _reaching(outputs, made, calls, inputs)

    infos = layer_infos(
        layers,
        {p: [result for _, result in seen] for p, seen in calls.items()},
        order,
        input_shape,
        is_tensor,
        reaches=lambda path, t: needed is None or path in needed,
        is_end=lambda t: id(t) in ends,
    )
    return ModelLayout(
        input_shape=tuple(input_shape),
        layers=infos,
        output_names=output_names(model, raw, len(outputs)),
        output_shapes=[tuple(int(d) for d in y.shape[1:]) for y in outputs],
        output_activations=[None if s is None else s[0] for s in logits],
        nested_models=[p for p, l in keras_private.walk_layers(model) if isinstance(l, keras.Model)],
        output_logits=[None if s is None else s[1] for s in logits],
        output_sources=[_reaching([y], made, calls, inputs) for y in outputs],
    )


def _activation_kind(function: Any) -> str | None:
    name = getattr(function, "__name__", None)
    return name if name in ("softmax", "sigmoid") else None


def _logit_source(
    y: Any, made: Callable[[Any], str | None], layers: dict[str, keras.layers.Layer], calls: dict[str, list[Any]]
) -> tuple[str, tuple[str, str]] | None:
    """(kind, where its logits are read) for one model output, or None where it ends in no softmax/sigmoid."""
    path = made(y)
    while path is not None and isinstance(layers[path], _PASS_THROUGH_LAYERS) and calls[path][-1][0]:
        path = made(calls[path][-1][0][0])
    if path is None:
        return None
    layer = layers[path]
    if isinstance(layer, keras.layers.Softmax):
        return "softmax", ("input", path)
    kind = _activation_kind(getattr(layer, "activation", None))
    if kind is None:
        return None
    return kind, ("input" if isinstance(layer, keras.layers.Activation) else "activation", path)


def _logit_tensor(source: tuple[str, tuple[str, str]] | None, calls: dict[str, list[Any]]) -> Any:
    """The dry run's logits tensor of an output whose logits are a layer's input (to mark that layer)."""
    if source is None or source[1][0] != "input" or not calls[source[1][1]][-1][0]:
        return None
    return calls[source[1][1]][-1][0][0]


def _reaching(
    outputs: list[Any], made: Callable[[Any], str | None], calls: dict[str, list[Any]], inputs: Any
) -> set[str] | None:
    """The layers the outputs are computed from, followed back through the tensors each layer took (the layers
    inside one that is needed count as needed); None where a tensor on the way was made by something other
    than a layer (an op in a subclassed call()), so that dependence cannot be told: then every layer counts."""
    sources = [t for t in keras.tree.flatten(inputs) if is_tensor(t)]
    needed: set[str] = set()
    stack = list(outputs)
    while stack:
        tensor = stack.pop()
        path = made(tensor)
        if path is None:
            if not is_tensor(tensor) or len(tensor.shape) == 0:
                continue
            if any(tensor is s or tuple(tensor.shape) == tuple(s.shape) for s in sources):
                continue  # an input, as given or as a nested model converted it
            return None
        if path in needed:
            continue
        needed.add(path)
        for args, _ in calls[path]:
            stack.extend(t for t in keras.tree.flatten(args) if is_tensor(t))
    inside = tuple(p + "/" for p in needed)
    return needed | {p for p in calls if p.startswith(inside)}
