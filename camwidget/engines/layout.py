"""What a dry run learns about a model: its layers (shape, calls, order, whether the output depends on them,
how each reads as a map) and its outputs; the choice of the default layer and the check of a chosen one.

The dry runs themselves are the engines' own (:func:`camwidget.engines.tensorflow_layout.describe_model` walks a
traced graph; :func:`camwidget.engines.portable_layout.describe_model` follows the tensors each layer returned);
both build the :class:`ModelLayout` here with :func:`layer_infos`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import keras

from camwidget import keras_private
from camwidget.engines.geometry import MapGeometry, geometry_of
from camwidget.errors import CAMError, LayerError, closest, quoted
from camwidget.inputs.feed import Feed


@dataclass(frozen=True)
class LayerInfo:
    """One layer as the dry run saw it."""

    path: str  # "vgg16/block5_conv3"; top-level layers by name alone
    layer: keras.layers.Layer
    shape: tuple[int | None, ...] | None  # output shape without the batch axis; None if not one tensor
    calls: int  # times called in one forward pass
    order: int  # position in forward order
    reaches_output: bool  # the model's outputs depend on it
    computes_features: bool
    geometry: MapGeometry | None = None  # how its output reads as a map; None: it does not
    is_output: bool = False  # its output is the model's output (or the logits under it): not a default layer

    @property
    def is_spatial(self) -> bool:
        """Its output reads as a map (image, tokens, signal or volume)."""
        return self.geometry is not None

    @property
    def area(self) -> int | None:
        return None if self.geometry is None else self.geometry.positions

    def describe_shape(self) -> str:
        return "×".join("?" if d is None else str(d) for d in (self.shape or ()))


@dataclass
class ModelLayout:
    """What the dry run learned about a model at one input shape."""

    input_shape: tuple[int, ...]  # (H, W, C) the dry run used
    layers: dict[str, LayerInfo]  # every layer, by path, in forward order
    output_names: list[str]
    output_shapes: list[tuple[int | None, ...]]  # without the batch axis
    output_activations: list[str | None] = field(default_factory=list)  # "softmax" | "sigmoid" | None
    nested_models: list[str] = field(default_factory=list)  # paths of the models inside this one
    # Where each output's logits are read off the backends that have no graph to walk (JAX, torch):
    # ("input", path) the input of a final Softmax / Activation layer, ("activation", path) what goes into the
    # final layer's own activation, None where the output has no final softmax or sigmoid.
    output_logits: list[tuple[str, str] | None] = field(default_factory=list)
    # The layers each output is computed from, where the dry run could follow it back (JAX, torch; None where
    # it could not): a gradient there is zero, not missing, so "does not depend" must be known beforehand.
    output_sources: list[set[str] | None] = field(default_factory=list)

    def spatial_paths(self) -> list[str]:
        """Layers that can be explained: an output that reads as a map (see :data:`MAP_KINDS`) of more than
        one position, called once, and the output depends on them; not the model's output itself or the logits
        under it (a segmentation's last layers: they are what is explained)."""
        return [
            p
            for p, i in self.layers.items()
            if i.is_spatial and i.calls == 1 and i.reaches_output and i.area != 1 and not i.is_output
        ]

    @property
    def input_kind(self) -> str:
        """What the model takes: "image" (H, W, C), "signal" (L, C) or "volume" (D, H, W, C)."""
        return {2: "signal", 4: "volume"}.get(len(self.input_shape), "image")

    def default_path(self) -> str:
        """The last map layer that computes features. In a vision transformer, the last token layer before its
        last attention layer: after that layer the output reads only the class token, so the patch tokens'
        gradients there are zero (pytorch-grad-cam's advice: the last block's first norm)."""
        candidates = [p for p in self.spatial_paths() if self.layers[p].computes_features]
        opaque = [p for p, info in self.layers.items() if type(info.layer).__name__ == "TFSMLayer"]
        if not candidates and opaque:
            raise LayerError(
                f"this model wraps a SavedModel ({opaque[0]!r}, a keras.layers.TFSMLayer), whose layers Keras "
                "cannot see, so no layer's output can be read; load the model itself instead: "
                "keras.models.load_model('model.keras' or 'model.h5'), or build it in Keras and load its "
                "weights (model.load_weights)"
            )
        if not candidates:
            wanted = {
                "signal": "a 1-D (N, length, channels) output",
                "volume": "a (N, depth, height, width, channels) output",
            }.get(self.input_kind, "a spatial (N, height, width, channels) or token (N, tokens, channels) output")
            raise LayerError(
                f"this model has no layer with {wanted} of more than one position that the output depends on, "
                "so there is no map to draw; Grad-CAM needs a convolutional (or token) layer"
            )
        last = candidates[-1]
        if self.layers[last].geometry.kind == "tokens":
            attention = [(p, i.order) for p, i in self.layers.items() if "Attention" in type(i.layer).__name__]
            last_path, last_order = max(attention, key=lambda a: a[1]) if attention else ("", -1)
            inside = tuple(p + "/" for p, _ in attention)  # an attention layer's own query, key ... layers
            before = [p for p in candidates if self.layers[p].order < last_order and not p.startswith(inside)]
            if before and self.layers[before[-1]].geometry.kind == "tokens":
                return before[-1]
        return last

    def with_token_grid(self, grid: tuple[int, int] | None, leading_tokens: int | None) -> ModelLayout:
        """This layout with every token layer read on `grid` and/or after `leading_tokens` (what an explorer
        given grid= shows on every layer): a token layer whose count does not fit them is not offered. Where no
        layer fits, this layout as it is, so that resolving a layer with the grid says why (:meth:`with_grid`)."""
        if (grid is None and leading_tokens is None) or self.input_kind != "image":
            return self
        layers = {}
        for path, info in self.layers.items():
            if info.shape is not None and len(info.shape) == 2 and info.shape[0] is not None:
                try:
                    geometry = geometry_of(info.shape, self.input_shape, grid, leading_tokens)
                except LayerError:
                    geometry = None
                info = dataclasses.replace(info, geometry=geometry)
            layers[path] = info
        if not any(i.geometry is not None and i.geometry.kind == "tokens" for i in layers.values()):
            return self
        return dataclasses.replace(self, layers=layers)

    def with_grid(self, info: LayerInfo, grid: tuple[int, int] | None, leading_tokens: int | None = None) -> LayerInfo:
        """`info` with its tokens read on a given (rows, columns) patch grid (the last rows*columns tokens), or
        after `leading_tokens` tokens (see :func:`given_token_grid`)."""
        if grid is None and leading_tokens is None:
            return info
        if info.shape is None or len(info.shape) != 2 or len(self.input_shape) != 3:
            given = "grid=" if grid is not None else "leading_tokens="
            raise LayerError(
                f"{given} reads a token layer (N, tokens, channels) of an image model; layer {info.path!r} has "
                f"output (N, {info.describe_shape()})"
            )
        return dataclasses.replace(info, geometry=geometry_of(info.shape, self.input_shape, grid, leading_tokens))

    def resolve(
        self, name: str | None, grid: tuple[int, int] | None = None, leading_tokens: int | None = None
    ) -> LayerInfo:
        """The LayerInfo for a user-given layer name (or the default), with errors a person can act on;
        `grid` (rows, columns) reads a token layer on that patch grid, `leading_tokens` after that many."""
        if name is None:
            return self.with_grid(self.layers[self.default_path()], grid, leading_tokens)
        if not isinstance(name, str):
            raise TypeError(
                f"layer must be a layer name (str) such as {self.default_path()!r}, not {type(name).__name__}"
            )
        info = self.layers.get(name)
        if info is None:
            by_leaf = [p for p in self.layers if p.rsplit("/", 1)[-1] == name]
            if len(by_leaf) == 1:
                info = self.layers[by_leaf[0]]
        if info is None and name in self.nested_models:
            inside = [p for p in self.spatial_paths() if p.startswith(name + "/") and self.layers[p].computes_features]
            raise LayerError(
                f"{name!r} is a nested model, not a layer; choose one of its layers, e.g. "
                f"{quoted(inside[-1:] or [self.default_path()])}"
            )
        if info is None:
            hint = closest(name, self.spatial_paths()) or closest(name, self.layers)
            msg = f"layer {name!r} not found"
            if hint:
                msg += f"; closest: {quoted(hint)}"
            msg += f". Spatial layers of this model: {quoted(self.spatial_paths())}"
            raise LayerError(msg)
        info = self.with_grid(info, grid, leading_tokens)
        if info.calls > 1:
            raise LayerError(
                f"layer {info.path!r} is called {info.calls} times in one forward pass, so its map would be "
                f"ambiguous; choose a layer used once, e.g. {self.default_path()!r}"
            )
        if not info.is_spatial:
            shape = "several tensors" if info.shape is None else f"shape (N, {', '.join(map(str, info.shape))})"
            wanted = {
                "signal": "a 1-D map (N, length, channels)",
                "volume": "a map (N, depth, height, width, channels)",
            }.get(
                self.input_kind,
                "a spatial map (N, height, width, channels), or tokens (N, h*w (+ class tokens), channels)",
            )
            raise LayerError(
                f"layer {info.path!r} has output {shape}, not {wanted}; choose one of {quoted(self.spatial_paths())}"
                + (
                    " (for tokens whose patch grid is not found, give grid=(rows, columns))"
                    if self.input_kind == "image" and info.shape is not None and len(info.shape) == 2
                    else ""
                )
            )
        if info.area == 1:
            raise LayerError(
                f"layer {info.path!r} has a {'x'.join(map(str, info.geometry.grid))} output: one position, so there "
                f"is nothing to map; choose an earlier layer, e.g. {self.default_path()!r}"
            )
        if not info.reaches_output:
            raise LayerError(f"the model's output does not depend on layer {info.path!r}; choose another layer")
        return info


def model_input_shape(model: keras.Model, feed: Feed | None = None) -> tuple[int | None, ...] | None:
    """The shape of one item of the images' input.

    Args:
        model: the model.
        feed: with several inputs, the feed that says which one the images go to.

    Returns:
        (H, W, C) (or whatever one item is), None entries where any size goes; None where the model does not
        know it yet (a subclassed model never built).

    Raises:
        CAMError: the model has several inputs and no feed says which one takes the images.
    """
    if feed is not None:
        return feed.shapes[feed.index]
    try:
        inputs = model.inputs
    except (AttributeError, ValueError):
        inputs = None
    if inputs:
        if len(inputs) > 1:
            names = [t.name for t in keras.tree.flatten(model.input)]
            raise CAMError(
                f"the model has {len(inputs)} inputs ({quoted(names)}); pass input= the one the images go to (a "
                "name or an index) and other_inputs= the values of the others"
            )
        return tuple(inputs[0].shape[1:])
    shape = keras_private.built_input_shape(model)
    return tuple(shape[1:]) if shape is not None and len(shape) >= 3 else None


def output_names(model: keras.Model, raw_output: Any, count: int) -> list[str]:
    """The names of a model's outputs: a dict output's keys, sorted; the model's output_names; else output_0 ..."""
    if isinstance(raw_output, dict):
        return [str(k) for k in sorted(raw_output)]
    names = getattr(model, "output_names", None)
    if names and len(names) == count:
        return [str(n) for n in names]
    return [f"output_{i}" for i in range(count)]


def readable_layers(model: keras.Model) -> dict[str, keras.layers.Layer]:
    """Every layer whose output can be read, by path: nested models are walked into, not read themselves; a
    layer inside TimeDistributed sees N*T frames as its batch, so its outputs are not the images' own."""
    walked = list(keras_private.walk_layers(model))
    wrapped = {p + "/" for p, l in walked if isinstance(l, keras.layers.TimeDistributed)}
    return {p: l for p, l in walked if not isinstance(l, keras.Model) and not any(p.startswith(w) for w in wrapped)}


def layer_infos(
    layers: dict[str, keras.layers.Layer],
    outputs: dict[str, list[Any]],
    order: list[str],
    input_shape: Sequence[int],
    is_tensor: Callable[[Any], bool],
    reaches: Callable[[str, Any], bool],
    is_end: Callable[[Any], bool],
) -> dict[str, LayerInfo]:
    """LayerInfo of every layer a dry run saw, in forward order, from the outputs each reported (in call order)
    and the order of the calls; `reaches` and `is_end` say, for a layer's one output, whether the model's
    outputs depend on it and whether it is an output (or the logits under one)."""
    first_seen = {p: i for i, p in reversed(list(enumerate(order)))}
    infos = {}
    for path in sorted((p for p in layers if outputs[p]), key=first_seen.__getitem__):
        outs = outputs[path]
        single = outs[0] if is_tensor(outs[0]) else None
        shape = tuple(None if d is None else int(d) for d in single.shape[1:]) if single is not None else None
        infos[path] = LayerInfo(
            path=path,
            layer=layers[path],
            shape=shape,
            calls=len(outs),
            order=first_seen[path],
            reaches_output=single is not None and reaches(path, single),
            computes_features=keras_private.computes_features(layers[path]),
            geometry=geometry_of(shape, tuple(input_shape)),
            is_output=single is not None and is_end(single),
        )
    return infos


def refused(exc: Exception, input_shape: Sequence[int]) -> CAMError:
    """The error for a dry run the model itself refused: the shape tried and the first line of why."""
    return CAMError(
        f"the model could not be run on images of shape (N, {', '.join(map(str, input_shape))}): "
        f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
    )
