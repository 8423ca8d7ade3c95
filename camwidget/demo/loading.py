"""Build a Keras model and give it its weights while holding one copy of them in memory.

Why: Binder gives a notebook 1-2 GB. VGG16 has 553 MB of weights and TensorFlow's import takes about
0.6 GB, yet ``VGG16(weights=...)`` peaks near 2.8 GB: Keras first fills every variable with random values
(the initializer's arithmetic holds two more copies of the 411 MB ``fc1`` kernel, which TensorFlow's
oneDNN allocator keeps for the life of the process), and the h5 loader then converts each array to a
tensor (two more copies) before assigning it.

How: the model is built inside ``keras.StatelessScope(initialize_variables=False)``, so its variables
exist (names, shapes) but hold no values yet. Each one is then created directly from its array: read
from the h5 file into a 64-byte-aligned NumPy buffer and handed to TensorFlow through DLPack, which
shares the buffer instead of copying it. A variable that gets no array from the file gets its own
initializer's values instead, one variable at a time.

Private Keras API (``_value``, ``_initializer``, ``_initialize`` and the list of variables waiting for a
value): :func:`build_unfilled` checks that it is there, and where it is not (another Keras version), or
where the build itself sets values, the model is built the ordinary way, which costs memory but works.
"""

from __future__ import annotations

import os
from collections.abc import Callable

import h5py
import keras
import numpy as np

from camwidget import keras_private
from camwidget.tensorflow_lazy import tf

_ALIGNMENT = 64  # bytes: TensorFlow's CPU kernels (Eigen, oneDNN) require it of a borrowed buffer


def build_unfilled(build: Callable[..., keras.Model], **kwargs: object) -> keras.Model:
    """``build(**kwargs)`` with variables that hold no values yet (none allocated).

    Fill them with :func:`fill_from_h5` and/or :func:`fill_with_initializers` before using the model.
    Where this Keras cannot defer values, the model comes back already filled with random values.
    """
    waiting_before = list(_waiting())
    try:
        with keras.StatelessScope(initialize_variables=False) as scope:
            model = build(**kwargs)
        assigned = any(scope.get_current_value(v) is not None for v in model.variables)
    except Exception:
        assigned = True
    # A build that sets values while building (the scope would drop them), or Keras internals not as
    # expected: build it the ordinary way.
    if assigned or not all(_is_unfilled(v) or _is_filled(v) for v in model.variables):
        _set_waiting(waiting_before)
        return build(**kwargs)
    return model


def unfilled_variables(model: keras.Model) -> list[keras.Variable]:
    """Variables still without values: weights, and state such as a Dropout layer's random seed."""
    return [v for v in model.variables if _is_unfilled(v)]


def fill_from_h5(model: keras.Model, path: str | os.PathLike) -> None:
    """Give the model's unfilled variables their values from a Keras h5 weights file in the layout that
    ``keras.applications`` publishes (root attribute ``layer_names``; per layer, ``weight_names``).

    Everything is checked (layer count, weight count, shapes) before any variable gets a value, so a file
    for another model raises ``ValueError`` and leaves the model as it was. Variables that are not weights
    (a Dropout layer's random seed) get their initial values.
    """
    with h5py.File(path, "r") as file:
        pairs = _match_legacy_layout(model, _weights_group(file))
        try:
            for variable, dataset in pairs:
                if _is_unfilled(variable):
                    _set_value(variable, _read_aligned(dataset, variable.dtype))
        finally:
            _forget_filled()
    _fill_remaining_with_initializers(model)


def fill_with_initializers(model: keras.Model) -> None:
    """Give each still-unfilled variable its own initializer's values (random weights), one at a time.

    The initializer runs inside a ``tf.function`` so that its arithmetic reuses buffers: at the peak one
    temporary beside the largest variable's values, where running it eagerly holds two.
    """
    _fill_remaining_with_initializers(model)


def is_legacy_h5(path: str | os.PathLike) -> bool:
    """Whether `path` is an h5 file in the keras.applications layout (what ``keras.utils.get_file``
    downloads for VGG16 and friends), as opposed to Keras 3's ``.weights.h5`` or a ``.keras`` archive."""
    try:
        with h5py.File(path, "r") as file:
            group = _weights_group(file)
            return "layer_names" in group.attrs or "layer_names0" in group.attrs
    except OSError:  # not an h5 file at all (a .keras archive is a zip)
        return False


# --- the file layout ---------------------------------------------------------------------------------


def _weights_group(file: h5py.File) -> h5py.Group:
    """A whole model saved as legacy h5 keeps its weights under ``model_weights``."""
    return file["model_weights"] if "model_weights" in file and "layer_names" not in file.attrs else file


def _match_legacy_layout(model: keras.Model, file: h5py.Group) -> list[tuple[keras.Variable, h5py.Dataset]]:
    """(variable, dataset) pairs in the order Keras's own legacy loader uses: layers with weights in
    ``model.layers`` order against the file's layers that list weights (within a layer, trainable weights
    then non-trainable ones); then the model's own weights, outside its layers, against
    ``top_level_model_weights``."""
    layers = [layer for layer in model.layers if _legacy_weights(layer)]
    groups = [_child(file, name, h5py.Group) for name in _string_list(file, "layer_names")]
    groups = [g for g in groups if _string_list(g, "weight_names")]
    if len(groups) != len(layers):
        raise ValueError(f"the weights file has {len(groups)} layers with weights; {model.name} has {len(layers)}")
    pairs = []
    for layer, group in zip(layers, groups):
        pairs += _pair(_legacy_weights(layer), group, f"layer {layer.name!r}")
    in_layers = {id(v) for v, _ in pairs}
    own = [v for v in model.weights if id(v) not in in_layers]
    if own or "top_level_model_weights" in file:
        pairs += _pair(own, file.get("top_level_model_weights"), f"model {model.name!r} (its own weights)")
    return pairs


def _pair(
    variables: list[keras.Variable], group: h5py.Group | None, what: str
) -> list[tuple[keras.Variable, h5py.Dataset]]:
    names = _string_list(group, "weight_names") if group is not None else []
    datasets = [_child(group, name, h5py.Dataset) for name in names]
    if len(datasets) != len(variables):
        raise ValueError(f"{what} has {len(variables)} weights; the weights file has {len(datasets)} for it")
    for variable, dataset in zip(variables, datasets):
        if tuple(dataset.shape) != tuple(variable.shape):
            raise ValueError(
                f"{what}: {variable.path} has shape {tuple(variable.shape)}; "
                f"the weights file's {dataset.name} has {dataset.shape}"
            )
    return list(zip(variables, datasets))


def _child(group: h5py.Group, path: str, kind: type) -> h5py.Group | h5py.Dataset:
    """``group[path]``, refusing links (an external link could make a weights file read another file),
    like Keras's own loader."""
    node = group
    for part in path.split("/"):
        link = node.get(part, getlink=True) if part else None
        if not isinstance(link, h5py.HardLink):
            raise ValueError(f"the weights file has no {path!r} in {group.name!r} (or it is a link, which is refused)")
        node = node[part]
    if not isinstance(node, kind):
        raise ValueError(f"the weights file's {node.name!r} is not a {kind.__name__}")
    return node


def _legacy_weights(layer: keras.layers.Layer) -> list[keras.Variable]:
    return layer.trainable_weights + layer.non_trainable_weights


def _string_list(node: h5py.Group, name: str) -> list[str]:
    """An attribute holding a list of names; Keras splits long lists into ``name0``, ``name1``, …"""
    if name in node.attrs:
        chunks = [node.attrs[name]]
    else:
        chunks, k = [], 0
        while f"{name}{k}" in node.attrs:
            chunks.append(node.attrs[f"{name}{k}"])
            k += 1
    return [n.decode("utf8") if isinstance(n, bytes) else str(n) for chunk in chunks for n in chunk]


# --- values without copies ---------------------------------------------------------------------------


def _read_aligned(dataset: h5py.Dataset, dtype: str) -> np.ndarray:
    """The dataset's values as `dtype` (HDF5 converts while reading), in memory TensorFlow can borrow."""
    array = _aligned_empty(dataset.shape, dtype)
    if array.size:
        dataset.read_direct(array)
    return array


def _aligned_empty(shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    dtype = np.dtype(dtype)
    nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    raw = np.empty(nbytes + _ALIGNMENT, np.uint8)
    start = -raw.ctypes.data % _ALIGNMENT
    return raw[start : start + nbytes].view(dtype).reshape(shape)


def _borrow(array: np.ndarray) -> tf.Tensor:
    """A tensor that shares `array`'s memory (kept alive by the tensor). ``tf.convert_to_tensor`` would
    hold two extra copies of it at its peak."""
    from_dlpack = getattr(getattr(tf.experimental, "dlpack", None), "from_dlpack", None)
    if array.ndim == 0 or array.size == 0 or array.ctypes.data % _ALIGNMENT or from_dlpack is None:
        return tf.convert_to_tensor(array)  # small, not ours to borrow safely, or no DLPack in this TensorFlow
    return from_dlpack(array.__dlpack__())


def _set_value(variable: keras.Variable, array: np.ndarray) -> None:
    value = _borrow(array)
    with tf.init_scope():
        keras_private.fill_variable(variable, value)


def _fill_remaining_with_initializers(model: keras.Model) -> None:
    # Largest first: TensorFlow keeps freed buffers for reuse, so the smaller ones then fit in its temporaries.
    for variable in sorted(unfilled_variables(model), key=lambda v: -int(np.prod(v.shape))):
        initializer = keras_private.variable_initializer(variable)
        compute = tf.function(lambda: initializer(variable.shape, dtype=variable.dtype), autograph=False)
        keras_private.omit_tracing_warning(compute)  # one trace per variable is the plan, not a mistake
        with tf.init_scope():
            keras_private.fill_variable(variable, compute())
    _forget_filled()


# --- Keras's bookkeeping ---------------------------------------------------------------------------------


_is_unfilled = keras_private.is_unfilled
_is_filled = keras_private.is_filled
_waiting = keras_private.waiting_variables
_set_waiting = keras_private.set_waiting_variables


def _forget_filled() -> None:
    """Take filled variables off Keras's list of variables waiting for a value: the next StatelessScope
    to close would otherwise try to initialize them again, and fail."""
    _set_waiting([v for v in _waiting() if _is_unfilled(v)])
