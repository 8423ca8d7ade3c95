"""Every use of Keras's private API, in one place, each probed and with a fallback.

A Keras release that renames one of these gives a slower path (a full forward pass instead of only the
layers after the chosen one) or a less specific message, never an AttributeError:

* ``_flatten_layers``: the sub-layers of a layer that is not a Model (a custom block). Fallback: none seen.
* ``_build_shapes_dict``: the input shape a subclassed model was built with. Fallback: unknown (ask for a
  sample).
* ``_value`` of a variable under JAX: None while Keras's JAX trainer holds the values. Fallback: assume held.
* ``_call_has_training_arg``: whether a layer's ``call`` takes ``training``. Fallback: pass it only to
  layers whose ``call`` signature names it.
* ``_nodes_by_depth`` and each node's ``operation``, ``is_input``, ``input_tensors``, ``outputs`` and
  ``arguments.fill_in``: the functional graph, to run only the layers after one (the "tail"). Fallback:
  no tail (a full pass).
* ``keras.src.layers.<package>`` module names: which layers compute no new features (pooling, dropout,
  reshaping, preprocessing), so the default layer skips them. Fallback: the public classes of those families.
* A variable's ``_initializer``, ``_initialize`` and ``_value``, and ``keras.src.backend.common.global_state``'s
  list of variables waiting for a value: the demo's streamed weight loading fills deferred variables in place.
  Fallback: ``variable.assign``, and an empty waiting list.
* ``_omit_frequent_tracing_warning`` on a ``tf.function``: quiets TensorFlow's retracing warning where one trace
  per variable is the plan. Fallback: the warning shows.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator
from typing import Any

import keras

# What a missing or changed private attribute raises; caught only around the private uses below.
_API_CHANGED = (AttributeError, TypeError, KeyError, ValueError, IndexError)


def child_layers(layer: Any) -> list[keras.layers.Layer]:
    """The layers directly inside `layer` (a model's layers, a custom block's sub-layers)."""
    if isinstance(layer, keras.Model):
        try:
            return list(layer.layers)
        except _API_CHANGED:
            return []
    try:
        return list(layer._flatten_layers(include_self=False, recursive=False))
    except _API_CHANGED:
        return []


def walk_layers(model: keras.layers.Layer) -> Iterator[tuple[str, keras.layers.Layer]]:
    """(path, layer) for every layer under `model`, depth first; containers are walked into."""
    for path, layer, _ in walk_layers_with_children(model):
        yield path, layer


def walk_layers_with_children(model: keras.layers.Layer) -> Iterator[tuple[str, keras.layers.Layer, list[Any]]]:
    """(path, layer, its child_layers) for every layer under `model`, as :func:`walk_layers` visits them; each
    layer's children are read once."""
    seen: set[int] = set()

    def visit(children: list[Any], prefix: str) -> Iterator[tuple[str, keras.layers.Layer, list[Any]]]:
        for child in children:
            if id(child) in seen or isinstance(child, keras.layers.InputLayer):
                continue
            seen.add(id(child))
            path = f"{prefix}{child.name}"
            grandchildren = child_layers(child)
            yield path, child, grandchildren
            yield from visit(grandchildren, path + "/")

    yield from visit(child_layers(model), "")


def built_input_shape(model: keras.Model) -> tuple[Any, ...] | None:
    """The (N, ...) shape a model without Input was built with, where Keras recorded one."""
    try:
        shapes = model._build_shapes_dict or {}
    except _API_CHANGED:
        return None
    if isinstance(shapes, dict) and len(shapes) == 1:
        (shape,) = shapes.values()
        if isinstance(shape, (tuple, list)):
            return tuple(shape)
    return None


def run_layer(layer: keras.layers.Layer, *args: Any, **kwargs: Any) -> Any:
    """Call a layer in inference mode (training=False where its call takes it)."""
    if "training" not in kwargs and _takes_training(layer):
        kwargs["training"] = False
    return layer(*args, **kwargs)


def held_value(variable: Any) -> Any:
    """The backend array a Keras variable holds (None while Keras's JAX trainer has taken it out: fit / predict /
    evaluate set ``_value = None`` while they run and put it back after). Fallback: its ``value``."""
    try:
        return variable._value
    except _API_CHANGED:
        return getattr(variable, "value", None)


_LAYER = keras.layers.Layer


def trainable_split(model: keras.Model) -> tuple[list[Any], list[Any]]:
    """(model.trainable_variables, model.non_trainable_variables), the lists stateless_call pairs its arguments
    with. Where the model keeps Keras's own definitions of both, they come from one walk of its layers
    (model.variables) split by Keras's rule, not two: this runs before every JAX pass."""
    kind = type(model)
    if (
        kind.trainable_variables is not _LAYER.trainable_variables
        or kind.non_trainable_variables is not _LAYER.non_trainable_variables
    ):
        return list(model.trainable_variables), list(model.non_trainable_variables)
    variables = list(model.variables)
    if not model.trainable:
        return [], variables
    return [v for v in variables if v.trainable], [v for v in variables if not v.trainable]


def inference_kwargs(layer: keras.layers.Layer) -> dict[str, Any]:
    """{"training": False} where the layer's call takes it (what Layer.__call__ would pass), else {}."""
    return {"training": False} if _takes_training(layer) else {}


def _takes_training(layer: keras.layers.Layer) -> bool:
    try:
        return bool(layer._call_has_training_arg)
    except _API_CHANGED:
        try:
            return "training" in inspect.signature(layer.call).parameters
        except (TypeError, ValueError):
            return False


# ---------------------------------------------------------------------------------------------------------
# The network after a layer: run only the layers after it on given activations. Only for graphs Keras
# describes (functional and Sequential, nested too); None otherwise, and the caller runs a full pass.


def layers_after(model: keras.Model, path: str, shape: tuple[int, ...]) -> list[keras.layers.Layer] | None:
    """The layers that run after `path` on the way to the outputs, in order (run once on zeros of the
    layer's output `shape`); None where the structure does not allow running the tail alone."""
    names = path.split("/")
    try:
        if _tail(model, names, None, dry=True) is None:
            return None
        called: list[keras.layers.Layer] = []

        def recording(layer: keras.layers.Layer, *args: Any, **kwargs: Any) -> Any:
            called.append(layer)
            return run_layer(layer, *args, **kwargs)

        _tail(model, names, keras.ops.zeros((1, *shape)), dry=False, run=recording)
    except _API_CHANGED:
        return None
    return called


def tail_function(model: keras.Model, path: str, output: int) -> Callable[[Any], Any] | None:
    """A function activations -> the model's output number `output`, running only the layers after `path`;
    or None where the model's structure does not allow it (subclassed models, layers used twice, skip
    connections from before the layer), or Keras no longer describes its graph as this code expects."""
    names = path.split("/")
    try:
        reachable = _tail(model, names, None, dry=True)
    except _API_CHANGED:
        return None
    if reachable is None or output >= len(reachable) or reachable[output] is None:
        return None
    return lambda activations: _tail(model, names, activations, dry=False)[output]


def _tail(
    container: keras.layers.Layer, names: list[str], value: Any, dry: bool, run: Callable[..., Any] = run_layer
) -> list[Any] | None:
    matches = [c for c in child_layers(container) if c.name == names[0]]
    if len(matches) != 1:
        return None
    child = matches[0]
    if len(names) > 1:
        inner = _tail(child, names[1:], value, dry, run)
        if inner is None or len(inner) != 1:
            return None
        value = inner[0]
    if isinstance(container, keras.Sequential):
        layers = container.layers
        position = next(i for i, layer in enumerate(layers) if layer is child)
        if dry:
            return [True]
        for layer in layers[position + 1 :]:
            value = run(layer, value)
        return [value]
    nodes_by_depth = getattr(container, "_nodes_by_depth", None)
    if not nodes_by_depth:
        return None
    nodes = [n for depth in nodes_by_depth.values() for n in depth if n.operation is child]
    if len(nodes) != 1 or len(nodes[0].outputs) != 1:
        return None
    start = nodes[0]
    if dry:
        return _tail_reaches_outputs(container, start)
    known = {id(start.outputs[0]): value}
    for depth in sorted(nodes_by_depth, reverse=True):
        for node in nodes_by_depth[depth]:
            if node is start or not node.operation or node.is_input:
                continue
            if not node.input_tensors or any(id(t) not in known for t in node.input_tensors):
                continue
            args, kwargs = node.arguments.fill_in(known)
            for t, v in zip(node.outputs, keras.tree.flatten(run(node.operation, *args, **kwargs))):
                known[id(t)] = v
    return [known.get(id(t)) for t in container.outputs]


def _tail_reaches_outputs(container: keras.Model, start: Any) -> list[Any] | None:
    """Symbolic check that every output downstream of `start` needs nothing from before it."""
    known = {id(start.outputs[0])}
    nodes_by_depth = container._nodes_by_depth
    for depth in sorted(nodes_by_depth, reverse=True):
        for node in nodes_by_depth[depth]:
            if node is start or not node.operation or node.is_input or not node.input_tensors:
                continue
            needed = [id(t) in known for t in node.input_tensors]
            if all(needed):
                known.update(id(t) for t in node.outputs)
            elif any(needed):
                return None  # mixes values from after the layer with values from before it
    outs = [True if id(t) in known else None for t in container.outputs]
    return outs if any(outs) else None


# ---------------------------------------------------------------------------------------------------------
# Layers that compute no new features: the default layer skips them.

_NON_FEATURE_PACKAGES = (
    "keras.src.layers.pooling",
    "keras.src.layers.regularization",
    "keras.src.layers.reshaping",
    "keras.src.layers.preprocessing",
)
# The same families by their public classes, where Keras's module layout has moved.
_NON_FEATURE_FALLBACK = tuple(
    getattr(keras.layers, name)
    for name in (
        "MaxPooling2D",
        "AveragePooling2D",
        "GlobalAveragePooling2D",
        "GlobalMaxPooling2D",
        "Dropout",
        "Reshape",
        "Flatten",
        "ZeroPadding2D",
        "Cropping2D",
        "Rescaling",
        "Normalization",
    )
    if hasattr(keras.layers, name)
)


def computes_features(layer: keras.layers.Layer) -> bool:
    """Whether a layer computes new features (not pooling, dropout or noise, padding, cropping, reshaping or
    preprocessing, which move, drop or reshape values): read off the Keras package its class is defined in."""
    if not keras.layers.Dense.__module__.startswith("keras.src.layers"):  # Keras's layout moved: public classes
        return not isinstance(layer, _NON_FEATURE_FALLBACK)
    return not any(cls.__module__.startswith(_NON_FEATURE_PACKAGES) for cls in type(layer).__mro__)


# ---------------------------------------------------------------------------------------------------------
# Deferred variables (the demo's streamed weight loading): a variable created in a StatelessScope has no
# value yet, and Keras keeps it on a global list to initialise when the scope closes.


def is_unfilled(variable: Any) -> bool:
    """Whether a variable waits for a value (created, not yet initialised). Fallback: False (filled)."""
    return (
        getattr(variable, "_value", object()) is None
        and callable(getattr(variable, "_initializer", None))
        and callable(getattr(variable, "_initialize", None))
    )


def is_filled(variable: Any) -> bool:
    """Whether a variable holds a value. Fallback: False where Keras no longer says (then nothing is assumed)."""
    return getattr(variable, "_value", None) is not None


def variable_initializer(variable: Any) -> Callable[..., Any] | None:
    """The initializer a deferred variable will be filled with; None where Keras does not say."""
    return getattr(variable, "_initializer", None)


def fill_variable(variable: Any, value: Any) -> None:
    """Give a deferred variable its first value, in place, and take it off the waiting list's duty (its
    initializer is dropped). Fallback: ``variable.assign(value)``."""
    initialize = getattr(variable, "_initialize", None)
    if not callable(initialize):
        variable.assign(value)
        return
    initialize(value)
    try:
        variable._initializer = None
    except _API_CHANGED:
        pass


def waiting_variables() -> list[Any]:
    """Keras's list of variables waiting for a value (initialised when a StatelessScope closes). Fallback: []."""
    try:
        from keras.src.backend.common import global_state

        return list(global_state.get_global_attribute("uninitialized_variables") or [])
    except (ImportError, *_API_CHANGED):
        return []


def set_waiting_variables(variables: list[Any]) -> None:
    """Replace Keras's list of variables waiting for a value. Fallback: nothing (the list is Keras's own)."""
    try:
        from keras.src.backend.common import global_state

        global_state.set_global_attribute("uninitialized_variables", list(variables))
    except (ImportError, *_API_CHANGED):
        pass


def omit_tracing_warning(function: Any) -> None:
    """Quiet TensorFlow's frequent-retracing warning for a ``tf.function`` traced once per use on purpose."""
    try:
        function._omit_frequent_tracing_warning = True
    except _API_CHANGED:
        pass
