"""Find a model's layers and read their outputs, without changing the model.

Every kind of Keras model (functional, Sequential, subclassed, nested, loaded) runs its layers through
``layer.__call__ -> layer.call``. So a layer's output is read by replacing ``call`` on that one layer
object for the length of one traced forward pass (:func:`capturing`), and putting it back in ``finally``.
Building ``keras.Model(model.inputs, inner_layer.output)`` instead fails for nested and Sequential models.

The dry run (:func:`describe_model`) traces the model once on a symbolic input, which computes nothing:
it records every layer's output shape, how often it is called, the call order, and whether the model's
outputs depend on it (a walk of the traced graph).
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import keras
import numpy as np

from camwidget import keras_private
from camwidget.errors import CAMError, LayerError, closest, quoted
from camwidget.inputs.feed import Feed
from camwidget.keras_private import walk_layers
from camwidget.tensorflow_lazy import tf

# Layers in these Keras packages move, drop or reshape values but compute no new features; the default
# layer skips them (pooling, dropout and noise, padding, cropping, reshaping, preprocessing).
_NON_FEATURE_PACKAGES = (
    "keras.src.layers.pooling",
    "keras.src.layers.regularization",
    "keras.src.layers.reshaping",
    "keras.src.layers.preprocessing",
)

# Graph ops that pass values through unchanged in order; walked over to find a softmax or sigmoid.
_PASS_THROUGH_OPS = ("Identity", "Reshape", "Squeeze", "ExpandDims", "Cast")

_patch_lock = threading.RLock()


# Kinds of map, by the model's input and the layer's output (batch axis left out):
#   "image"  input (H, W, C),    layer (h, w, C)     -> map (h, w)
#   "tokens" input (H, W, C),    layer (T, C)        -> map (h, w): T = k + h*w, k leading tokens left out
#   "signal" input (L, C),       layer (l, C)        -> map (l,)
#   "volume" input (D, H, W, C), layer (d, h, w, C)  -> map (d, h, w)  (Conv3D, or TimeDistributed frames)
MAP_KINDS = ("image", "tokens", "signal", "volume")
_MAX_LEADING_TOKENS = 8  # class token, distillation token, a few registers


@dataclass(frozen=True)
class MapGeometry:
    """How a layer's output (N, *positions, K) is read as maps (N, *grid)."""

    kind: str  # one of MAP_KINDS
    grid: tuple[int | None, ...]  # the map's shape without N
    leading: int = 0  # tokens: special tokens (class token ...) before the grid, not part of the map

    @property
    def positions(self) -> int | None:
        """How many positions the map has; None where the size is not fixed."""
        return None if any(d is None for d in self.grid) else int(np.prod(self.grid, dtype=np.int64))

    def describe(self) -> str:
        text = "×".join("?" if d is None else str(d) for d in self.grid)
        return f"{text} (tokens, {self.leading} leading)" if self.kind == "tokens" else text


def token_grid(tokens: int, input_shape: tuple[int | None, ...]) -> tuple[int, int, int] | None:
    """(leading, h, w) for `tokens` tokens of an image input (H, W, C): the fewest leading tokens k such that
    tokens - k = h*w for a grid with the image's aspect (H/h = W/w, whole patches); None if none fits."""
    height, width = input_shape[0], input_shape[1]
    if height is None or width is None:
        return None
    for leading in range(0, min(_MAX_LEADING_TOKENS, tokens - 1) + 1):
        count = tokens - leading
        for h in range(1, count + 1):
            if count % h == 0:
                w = count // h
                if height % h == 0 and width % w == 0 and height // h == width // w:
                    return leading, h, w
    return None


def given_token_grid(
    tokens: int, input_shape: tuple[int | None, ...], grid: tuple[int, int] | None, leading_tokens: int | None
) -> MapGeometry:
    """A token layer of `tokens` tokens read on a grid the user gave, as the last h*w tokens, or after the
    `leading_tokens` they named. A grid turned on its side against the picture (its aspect the picture's
    transposed), or one that leaves more than _MAX_LEADING_TOKENS tokens before it, is refused naming the grid
    that fits, unless `leading_tokens` says how many tokens come first (the patches are laid out that way)."""
    height, width = input_shape[0], input_shape[1]
    found = token_grid(tokens, input_shape)
    fits = (
        f"the grid that fits the picture's {height}×{width} is grid=({found[1]}, {found[2]}) after {found[0]} "
        "leading token(s)"
        if found
        else f"no grid of the picture's {height}×{width} aspect fits with at most {_MAX_LEADING_TOKENS} leading tokens"
    )
    if grid is None:  # leading_tokens alone: the grid of the picture's aspect for the tokens after them
        count = tokens - leading_tokens
        for h in range(1, count + 1):
            w = count // h
            if count % h == 0 and height and width and height % h == 0 and width % w == 0 and height // h == width // w:
                return MapGeometry("tokens", (h, w), leading_tokens)
        raise LayerError(
            f"leading_tokens={leading_tokens} leaves {count} of the layer's {tokens} tokens, which make no grid of "
            f"the picture's {height}×{width} aspect; give grid=(rows, columns) too, or another count ({fits})"
        )
    h, w = grid
    if h * w > tokens:
        raise LayerError(
            f"grid {grid} has {h * w} positions, but the layer has {tokens} tokens; give a grid of at "
            f"most {tokens} positions (the tokens after the leading ones, e.g. class token); {fits}"
        )
    leading = tokens - h * w
    if leading_tokens is not None:
        if leading_tokens != leading:
            raise LayerError(
                f"grid {grid} takes the last {h * w} of the layer's {tokens} tokens, which leaves {leading} leading "
                f"tokens, but leading_tokens={leading_tokens}; give a grid of {tokens - leading_tokens} positions"
            )
        return MapGeometry("tokens", (h, w), leading)
    if leading > _MAX_LEADING_TOKENS:
        raise LayerError(
            f"grid {grid} leaves {leading} of the layer's {tokens} tokens before it, more than the "
            f"{_MAX_LEADING_TOKENS} a vision transformer has (class, distillation, register tokens); {fits}. "
            f"If the model does have {leading} leading tokens, say so: leading_tokens={leading}"
        )
    turned = height is not None and width is not None and height != width and h != w and h * height == w * width
    if turned:
        raise LayerError(
            f"grid {grid} is the picture's aspect turned on its side: the picture is {height}×{width} (height × "
            f"width), {h} rows of patches would make them {height / h:g}×{width / w:g}; {fits}. If the patches "
            f"are laid out that way, say so: grid={grid}, leading_tokens={leading}"
        )
    return MapGeometry("tokens", (h, w), leading)


def _image_like(grid: tuple[int | None, ...], image: tuple[int | None, ...]) -> bool:
    """Whether an (h, w) output can be a feature map of an (H, W) image: no larger, and shrunk by similar
    factors on both sides (an attention layer's (tokens, heads, dim) is not: 17 x 2 of a 32 x 32 image)."""
    if None in grid or None in image:
        return True
    (h, w), (height, width) = grid, image
    if h > height or w > width or h < 1 or w < 1:
        return False
    ratio = (height / h) / (width / w)
    return 1 / 4 <= ratio <= 4


def geometry_of(
    shape: tuple[int | None, ...] | None,
    input_shape: tuple[int | None, ...],
    grid: tuple[int, int] | None = None,
    leading_tokens: int | None = None,
) -> MapGeometry | None:
    """The map geometry of a layer output `shape` (no batch axis) in a model of `input_shape`; None where its
    output is no map (a vector, several tensors, a rank that does not fit the input). `grid` and
    `leading_tokens` read a token layer as given (see :func:`given_token_grid`)."""
    if shape is None:
        return None
    rank, input_rank = len(shape), len(input_shape)
    if rank == 3 and input_rank == 3:
        return MapGeometry("image", tuple(shape[:2])) if _image_like(shape[:2], input_shape[:2]) else None
    if rank == 2 and input_rank == 2:
        return MapGeometry("signal", (shape[0],))
    if rank == 4 and input_rank == 4:
        return MapGeometry("volume", tuple(shape[:3]))
    if rank == 2 and input_rank == 3 and shape[0] is not None:
        if grid is not None or leading_tokens is not None:
            return given_token_grid(int(shape[0]), input_shape, grid, leading_tokens)
        found = token_grid(int(shape[0]), input_shape)
        if found is not None:
            leading, h, w = found
            return MapGeometry("tokens", (h, w), leading)
    return None


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
    """(H, W, C) (or whatever one item is) of the images' input, or None where the model does not know it yet."""
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


@contextlib.contextmanager
def capturing(
    layers: dict[str, keras.layers.Layer],
    on_output: Callable[[str, Any], Any],
    *,
    on_input: Callable[[str, tuple[Any, ...]], None] | None = None,
    activations: dict[str, keras.layers.Layer] | None = None,
    on_activation: Callable[[str, Any], None] | None = None,
) -> Iterator[None]:
    """While inside, each given layer reports every output it computes *in this thread* to
    ``on_output(path, output)``; a value it returns other than None replaces the output (the eps of a
    tape-free capture). ``on_input(path, args)`` sees the arguments first. Each layer of `activations` reports
    what goes into its ``activation`` (the logits under a Dense(activation="softmax")) to ``on_activation``.

    Replaces ``call`` (and ``activation``) on the layer objects and restores them in ``finally``, so the model
    is unchanged after. Other threads that call the model meanwhile go through the replaced ``call`` too, but it
    reports only calls made by the thread (and the capture) that installed it: their tensors never reach
    ``on_output``. Captures are serialised by a lock, so two never patch the same layer at once.
    """
    patched: list[tuple[keras.layers.Layer, str, Any]] = []
    token = object()

    def mine() -> bool:
        return getattr(_active, "token", None) is token

    def patch(layer: keras.layers.Layer, attribute: str, replacement: Any) -> None:
        replacement.camwidget_capture = True  # (state.py ignores it)
        patched.append((layer, attribute, layer.__dict__.get(attribute, _MISSING)))
        object.__setattr__(layer, attribute, replacement)

    with _patch_lock:
        previous_token = getattr(_active, "token", None)
        try:
            for path, layer in layers.items():

                def reporting_call(*args: Any, _original=layer.call, _path=path, **kwargs: Any) -> Any:
                    if on_input is not None and mine():
                        on_input(_path, args)
                    output = _original(*args, **kwargs)
                    if mine():
                        replaced = on_output(_path, output)
                        if replaced is not None:
                            return replaced
                    return output

                patch(layer, "call", reporting_call)
            for path, layer in (activations or {}).items():
                # wraps: the stand-in has the activation's own name, so that a get_config() made meanwhile in
                # another thread (clone_model, save) still says "softmax"
                @functools.wraps(layer.activation)
                def reporting_activation(z: Any, _original=layer.activation, _path=path) -> Any:
                    if on_activation is not None and mine():
                        on_activation(_path, z)
                    return _original(z)

                reporting_activation.camwidget_original = layer.activation  # type: ignore[attr-defined]
                patch(layer, "activation", reporting_activation)
            _active.token = token
            yield
        finally:
            _active.token = previous_token
            for layer, attribute, previous in reversed(patched):
                if previous is _MISSING:
                    object.__delattr__(layer, attribute)
                else:
                    object.__setattr__(layer, attribute, previous)


_MISSING = object()
_active = threading.local()  # the capture this thread is running, if any


def call_model(
    model: keras.Model, x: tf.Tensor, feed: Feed | None = None, others: Sequence[tf.Tensor] = ()
) -> list[tf.Tensor]:
    """The model's outputs as a flat list, in inference mode; with a feed, `x` goes to its input among `others`."""
    return keras.tree.flatten(model(x if feed is None else feed.pack(x, others), training=False))


def output_names(model: keras.Model, raw_output: Any, count: int) -> list[str]:
    if isinstance(raw_output, dict):
        return [str(k) for k in sorted(raw_output)]
    names = getattr(model, "output_names", None)
    if names and len(names) == count:
        return [str(n) for n in names]
    return [f"output_{i}" for i in range(count)]


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


def _computes_features(layer: keras.layers.Layer) -> bool:
    return not any(cls.__module__.startswith(_NON_FEATURE_PACKAGES) for cls in type(layer).__mro__)


def readable_layers(model: keras.Model) -> dict[str, keras.layers.Layer]:
    """Every layer whose output can be read, by path: nested models are walked into, not read themselves; a
    layer inside TimeDistributed sees N*T frames as its batch, so its outputs are not the images' own."""
    walked = list(walk_layers(model))
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
            computes_features=_computes_features(layers[path]),
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


def describe_model(model: keras.Model, input_shape: tuple[int, ...], feed: Feed | None = None) -> ModelLayout:
    """Trace the model once on a symbolic (None, *input_shape) input (and the feed's other inputs) and describe
    its layers."""
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
        tf.function(probe).get_concrete_function(spec, *(feed.specs() if feed else ()))
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
        nested_models=[p for p, l in walk_layers(model) if isinstance(l, keras.Model)],
    )
