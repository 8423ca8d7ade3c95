"""Models with several inputs: which input the images go to, and the arrays given once for the others.

    feed = make_feed(model, input="image", other_inputs={"meta": metadata})

Every compiled pass then takes the images and the other inputs as arguments (so new values never retrace);
an other input given for one item (or a batch of one) is shared by every image, one given per image (N rows)
goes with its image.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import keras
import numpy as np

from camwidget.errors import CAMError, ImageError, quoted


@dataclass(frozen=True, eq=False)
class Feed:
    """Where the images go among a model's inputs, and the other inputs' values."""

    index: int  # the images' input, in the order of keras.tree.flatten(model.input)
    names: tuple[str, ...]  # every input's name, in that order
    shapes: tuple[tuple[int | None, ...], ...]  # every input's shape without the batch axis
    others: tuple[np.ndarray, ...]  # the other inputs in order (the images' left out), each (1 or N, *shape)
    structure: Any  # model.input: how the flat inputs are packed into what the model takes

    @property
    def signature(self) -> tuple[Any, ...]:
        """What a compiled pass depends on: the images' input and the others' item shapes and dtypes."""
        return (self.index, tuple((o.shape[1:], o.dtype.str) for o in self.others))

    def rows(self, n: int, image: int | None = None) -> list[np.ndarray]:
        """The other inputs for a batch of `n`: each shared input repeated; per-image inputs as given, or, for
        `n` variants of image `image` (Score-CAM's masked copies), that image's row repeated."""
        rows = []
        for name, value in zip(self.other_names, self.others):
            if image is not None and len(value) > 1:
                value = value[image : image + 1]
            if len(value) == 1:
                rows.append(np.repeat(value, n, axis=0))
            elif len(value) == n:
                rows.append(value)
            else:
                raise CAMError(
                    f"input {name!r} was given {len(value)} rows for {n} images; give one row (shared by every "
                    "image) or one per image"
                )
        return rows

    @property
    def other_names(self) -> list[str]:
        return [n for i, n in enumerate(self.names) if i != self.index]

    def pack(self, x: Any, others: Sequence[Any]) -> Any:
        """The model's input structure with the images at their place and the others around them."""
        flat = list(others)
        flat.insert(self.index, x)
        return keras.tree.pack_sequence_as(self.structure, flat)


def model_input_names(model: keras.Model) -> list[tuple[str, tuple[int | None, ...], str]] | None:
    """(name, shape without batch, dtype) of each input of a model that declares its inputs; else None."""
    try:
        structure = model.input
    except (AttributeError, ValueError):
        return None
    flat = keras.tree.flatten(structure)
    return [(t.name, tuple(t.shape[1:]), str(t.dtype)) for t in flat]


def make_feed(model: keras.Model, input: str | int | None, other_inputs: Any) -> Feed | None:
    """The Feed for `input` (a name or index) and `other_inputs` (a dict by name, a list in input order, or
    one array when there is one other input); None for a model with one input. Errors name the inputs."""
    declared = model_input_names(model)
    if declared is None or len(declared) <= 1:
        if other_inputs is not None or input not in (None, 0) and not (declared and input == declared[0][0]):
            what = "its input is not declared (a subclassed model)" if declared is None else "it has one input"
            raise CAMError(
                f"input= and other_inputs= are for models with several inputs, and {what}; "
                + ("leave them out" if declared else "build it as a functional model (keras.Input for each input)")
            )
        return None
    names = [name for name, _, _ in declared]
    if input is None:
        raise CAMError(
            f"the model has {len(names)} inputs ({quoted(names)}); pass input= the one the images go to (a name "
            "or an index) and other_inputs= the values of the others"
        )
    index = _input_index(input, names)
    others = _other_values(other_inputs, names, index)
    values = []
    for i, (name, shape, dtype) in enumerate(declared):
        if i != index:
            values.append(_checked(others[name], name, shape, dtype))
    return Feed(index, tuple(names), tuple(s for _, s, _ in declared), tuple(values), model.input)


def _input_index(input: str | int, names: list[str]) -> int:
    if isinstance(input, str):
        if input not in names:
            raise CAMError(f"input {input!r} not found; the model's inputs are {quoted(names)}")
        return names.index(input)
    if isinstance(input, (int, np.integer)) and not isinstance(input, bool):
        if not 0 <= input < len(names):
            raise CAMError(f"input index {input} is out of range: the model has inputs {quoted(names)}")
        return int(input)
    raise TypeError(f"input must be an input name or index, not {type(input).__name__}")


def _other_values(other_inputs: Any, names: list[str], index: int) -> dict[str, Any]:
    wanted = [n for i, n in enumerate(names) if i != index]
    if other_inputs is None:
        raise CAMError(
            f"the images go to input {names[index]!r}; the model also takes {quoted(wanted)}: give their values as "
            f"other_inputs={{{', '.join(f'{n!r}: ...' for n in wanted)}}}"
        )
    if isinstance(other_inputs, Mapping):
        given = {
            names[k] if isinstance(k, (int, np.integer)) and 0 <= k < len(names) else k: v
            for k, v in other_inputs.items()
        }
        unknown = [k for k in given if k not in wanted]
        if unknown:
            raise CAMError(
                f"other_inputs names {quoted(unknown)}, which are not other inputs; those are {quoted(wanted)}"
            )
        missing = [n for n in wanted if n not in given]
        if missing:
            raise CAMError(f"other_inputs lacks {quoted(missing)}; the model's other inputs are {quoted(wanted)}")
        return given
    in_order = isinstance(other_inputs, (list, tuple)) and (
        len(wanted) > 1 or (len(other_inputs) == 1 and hasattr(other_inputs[0], "shape"))
    )
    if in_order:
        if len(other_inputs) != len(wanted):
            raise CAMError(f"other_inputs has {len(other_inputs)} values for the {len(wanted)} inputs {quoted(wanted)}")
        return dict(zip(wanted, other_inputs))
    if len(wanted) == 1:
        return {wanted[0]: other_inputs}
    raise TypeError(f"other_inputs must be a dict {{name: array}} for the inputs {quoted(wanted)}")


def _checked(value: Any, name: str, shape: tuple[int | None, ...], dtype: str) -> np.ndarray:
    """One other input as an array (1 or N, *shape) of the input's dtype; errors name the input and shapes."""
    if hasattr(value, "numpy") and not isinstance(value, np.ndarray):
        value = value.numpy()
    try:
        array = np.asarray(value)
    except (TypeError, ValueError) as exc:
        raise ImageError(f"other input {name!r} could not be read as an array: {exc}") from None
    if not np.issubdtype(array.dtype, np.number) and array.dtype != bool:
        raise ImageError(f"other input {name!r} has dtype {array.dtype}; expected numbers")
    if array.ndim == len(shape):
        array = array[None]
    want = "(" + ", ".join("any" if d is None else str(d) for d in shape) + ")"
    if array.ndim != len(shape) + 1 or any(n is not None and n != g for n, g in zip(shape, array.shape[1:])):
        raise ImageError(
            f"other input {name!r} has shape {np.asarray(value).shape}; the model takes {want} per image "
            f"(give one, shared by every image, or a batch (N, {want[1:]})"
        )
    if np.issubdtype(array.dtype, np.floating) and not np.isfinite(array).all():
        raise ImageError(f"other input {name!r} contains NaN or infinite values")
    return np.ascontiguousarray(array.astype(_numpy_dtype(dtype)))


def _numpy_dtype(dtype: str) -> np.dtype:
    """NumPy's dtype for a Keras dtype name ("float32", "int64", "bfloat16")."""
    name = keras.backend.standardize_dtype(dtype)
    try:
        return np.dtype(name)
    except TypeError:
        import ml_dtypes  # Keras's own dependency: bfloat16 and the float8 kinds

        return np.dtype(getattr(ml_dtypes, name))
