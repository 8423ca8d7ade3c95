"""What a map explains: a target turns the model's output into one score per image, y (N,).

compute_cam(..., target=...) takes any callable of the output tensor (the output that `output=` selects:
its logits under score="auto" when the model ends in a softmax or sigmoid, the output as it is under
score="probability") that returns shape (N,), written with keras.ops (on TensorFlow, tf ops too) so that it can
be differentiated. The map then says which places raised y. Ready-made targets:

    Class(c)               the class score class_index=c means (the default; Class() each picture's top class)
    ClassScore(c)          y = out[:, c]                                   a column of the flattened output
    Unit(i)                y = out[:, i...]        one unit of a regression output
    Region(c, mask)        y = sum_{(i,j) in mask} out[:, i, j, c]         a segmentation class's pixels
    Box(b, c, offset=4)    y = out[:, b, offset + c]                       a detection's box b, class c

Without a target, a segmentation output (N, H, W, C) is explained per class as Region(c, the pixels the
model predicts as c) (see engine._region_scores). Region is pytorch-grad-cam's SemanticSegmentationTarget; Box assumes boxes (N, B, offset + C) whose last axis
holds `offset` coordinates and then the class scores.

Every index (class, unit, box, offset) is a whole number from 0: a negative one is refused with a CAMError, as
compute_cam's class_index is, never counted from the end as Python would (Box(b, -1) would otherwise read a box
coordinate). One past the output's size is refused when the target first meets the output.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import keras
import numpy as np
from keras import ops

from camwidget.errors import CAMError


def _index(value: Any, what: str, target: str) -> int:
    """One index of a target as given: a whole number from 0 (NumPy's too), else a CAMError naming it."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise CAMError(f"{target}: {what} must be a whole number from 0, not {value!r} ({type(value).__name__})")
    if value < 0:
        raise CAMError(
            f"{target}: {what} {value} is negative; indices count from 0 (negative ones are refused, not counted "
            "from the end)"
        )
    return int(value)


def _within(value: int, size: Any, what: str, target: str, out: Any) -> None:
    """`value` < `size` where the output's size is known (at trace time), else a CAMError naming both."""
    if size is not None and value >= size:
        raise CAMError(f"{target}: {what} {value} is out of range for the output {tuple(out.shape)}: 0..{size - 1}")


def check_class_index(value: Any, n_classes: int, what: str = "class_index") -> int:
    """The one check of a class number a user gives, with the one message every surface shows.

    Args:
        value: the class, a whole number (a NumPy integer too; not a bool).
        n_classes: how many classes the output scores.
        what: how the caller names the value in its message (``class_index``, ``versus``).

    Returns:
        The class as an int in 0..n_classes-1.

    Raises:
        TypeError: value is not a whole number.
        CAMError: value is negative or not below n_classes (negative ones are refused, not counted from the end).
    """
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{what} must be an int (or None for the top class), not {type(value).__name__}")
    if value < 0:
        raise CAMError(f"{what} {value} is negative; classes are numbered 0..{n_classes - 1}")
    if value >= n_classes:
        raise CAMError(
            f"{what} {value} is out of range: the model's output has {n_classes} classes (0..{n_classes - 1})"
        )
    return int(value)


@dataclass(frozen=True)
class Class:
    """The score of a class, as ``class_index=`` means it: what a map explains when no other target is given.

    y_c is the logit of class c (score="auto", the value before a final softmax or sigmoid) or its probability
    (score="probability"); a single sigmoid unit scores two classes (-z, z); a per-position output (N, H, W, C)
    scores c over the positions that predict it. ``Class()`` is each picture's top class, ``Class(3)`` class 3
    for every picture, ``Class((3, 5))`` one class per picture. ``class_index=c`` anywhere is ``Class(c)``.

    The engines score a Class by handing its class vector to the compiled pass as a tensor (one trace serves
    every class), not by calling it as a function as they do other targets (a new function object is traced
    anew): a class switch on VGG16 costs 168 ms that way against 279 ms through a new ClassScore target.

    Attributes:
        index: None (each picture's top class), a class from 0, or one class per picture (a tuple).
    """

    index: int | tuple[int, ...] | None = None

    @classmethod
    def of(cls, class_index: Any) -> Class:
        """class_index= as a user gives it (None, an int, or a sequence of ints), as a Class.

        Raises:
            TypeError: not None, an int or a sequence of ints.
        """
        if class_index is None:
            return cls(None)
        if isinstance(class_index, (int, np.integer, bool, np.bool_)):
            return cls(_class(class_index))
        if isinstance(class_index, (str, bytes)) or not hasattr(class_index, "__len__"):
            raise TypeError(f"class_index must be an int, a sequence of ints or None, not {type(class_index).__name__}")
        flat = np.asarray(class_index, dtype=object).ravel()
        return cls(tuple(_class(c.item() if isinstance(c, np.generic) else c) for c in flat))

    def vector(self, n_images: int, n_classes: int) -> np.ndarray:
        """The int32 (N,) class vector the passes take, each class checked against the output's range.

        Args:
            n_images: N.
            n_classes: how many classes the output scores.

        Returns:
            int32 (N,), -1 meaning "this picture's top class".

        Raises:
            CAMError: a class out of range (:func:`camwidget.classes.check_class_index`, the one range check),
                or not one class per picture.
        """
        if self.index is None:
            return np.full(n_images, -1, np.int32)
        if isinstance(self.index, int):
            return np.full(n_images, check_class_index(self.index, n_classes), np.int32)
        if len(self.index) != n_images:
            raise CAMError(
                f"class_index has {len(self.index)} entries for {n_images} images; give one per image, or one int"
            )
        return np.asarray([check_class_index(c, n_classes) for c in self.index], np.int32)

    def __repr__(self) -> str:
        return "Class(top)" if self.index is None else f"Class({self.index})"


def _class(c: Any) -> int:
    """One class as given: a whole number (its range, negative ones included, is checked in Class.vector)."""
    if isinstance(c, (bool, np.bool_)) or not isinstance(c, (int, np.integer)):
        raise TypeError(f"class_index must be an int (or None, or one int per image), not {type(c).__name__}")
    return int(c)


@dataclass(frozen=True, eq=False)  # hashed by identity: each target object is traced once
class ClassScore:
    """y = out[:, c] (the output flattened per image). c from 0; a negative c is refused."""

    class_index: int

    def __post_init__(self) -> None:
        _index(self.class_index, "class_index", "ClassScore")

    def __call__(self, out: Any) -> Any:
        size = int(np.prod(out.shape[1:]))
        _within(self.class_index, size, "class_index", "ClassScore", out)
        flat = ops.reshape(out, (-1, size))
        return flat[:, self.class_index]


@dataclass(frozen=True, eq=False)
class Unit:
    """y = out[:, i] or out[:, i, j, ...] for a tuple: one unit of a regression output. Each index from 0; a
    negative one is refused."""

    index: int | tuple[int, ...]

    def __post_init__(self) -> None:
        for i in self.index if isinstance(self.index, tuple) else (self.index,):
            _index(i, "index", "Unit")

    def __call__(self, out: Any) -> Any:
        index = self.index if isinstance(self.index, tuple) else (self.index,)
        if len(index) > len(out.shape) - 1:
            raise CAMError(
                f"Unit{index}: {len(index)} indices for an output {tuple(out.shape)} of {len(out.shape) - 1} axes "
                "per image"
            )
        for i, size in zip(index, out.shape[1:]):
            _within(i, size, "index", "Unit", out)
        return out[(slice(None), *index)]


@dataclass(frozen=True, eq=False)
class Region:
    """y = sum over the mask's pixels of out[:, i, j, c]: a segmentation class's region. c from 0; a negative c
    is refused."""

    class_index: int
    mask: Any  # (H, W) bool or 0/1 at the output's own spatial size

    def __post_init__(self) -> None:
        _index(self.class_index, "class_index", "Region")

    def __repr__(self) -> str:
        mask = np.asarray(self.mask)
        return (
            f"Region(class {self.class_index}, mask {'×'.join(map(str, mask.shape))}, {int((mask != 0).sum())} pixels)"
        )

    def __call__(self, out: Any) -> Any:
        mask = np.asarray(self.mask, np.float32)
        if len(out.shape) != 4 or tuple(out.shape[1:3]) != mask.shape:
            raise CAMError(
                f"Region needs a segmentation output (N, H, W, classes) and a mask of its (H, W); the output is "
                f"{tuple(out.shape)} and the mask {mask.shape}"
            )
        _within(self.class_index, out.shape[-1], "class_index", "Region", out)
        return ops.sum(out[..., self.class_index] * mask, axis=(1, 2))

    def flipped(self) -> Region:
        """The same class over the mask flipped left-right: the region of a picture flipped left-right (what
        aug_smooth's flipped copies are explained for)."""
        return Region(self.class_index, np.ascontiguousarray(np.flip(np.asarray(self.mask), axis=-1)))


@dataclass(frozen=True, eq=False)
class Box:
    """y = out[:, b, offset + c]: detection box b's score for class c. b, c and offset from 0; a negative one is
    refused (a negative c would otherwise read one of the box's coordinates)."""

    box: int
    class_index: int
    offset: int = 4  # coordinates before the class scores on the last axis

    def __post_init__(self) -> None:
        for what in ("box", "class_index", "offset"):
            _index(getattr(self, what), what, "Box")

    def __call__(self, out: Any) -> Any:
        if len(out.shape) != 3:
            raise CAMError(f"Box needs a detection output (N, boxes, {self.offset} + classes), not {tuple(out.shape)}")
        _within(self.box, out.shape[1], "box", "Box", out)
        classes = None if out.shape[2] is None else out.shape[2] - self.offset
        _within(self.class_index, classes, "class_index", "Box", out)
        return out[:, self.box, self.offset + self.class_index]


def check_target(target: Any) -> Any:
    """target= as given: None, a :class:`Class`, or a function of the output.

    Raises:
        TypeError: anything else.
    """
    if target is not None and not isinstance(target, Class) and not callable(target):
        raise TypeError(
            f"target must be a function of the model's output returning one score per image, such as "
            f"camwidget.targets.Unit(0), not {type(target).__name__}"
        )
    return target


def target_scores(target: Any, out: Any) -> Any:
    """target(out) as float32 (N,), or a ValueError that says what it returned instead (at trace time)."""
    call = target
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        call = tf.autograph.experimental.do_not_convert(target)  # the user's code runs as written
    try:
        chosen = call(out)
    except CAMError:
        raise
    except Exception as exc:  # noqa: BLE001 - the user's function: say what went wrong in it
        raise CAMError(
            f"target {target!r} failed on the output {tuple(out.shape)}: {type(exc).__name__}: {exc}. A target "
            f"takes the output tensor and uses keras.ops (or {keras.backend.backend()}'s own) operations on it"
        ) from exc
    chosen = ops.convert_to_tensor(chosen)
    if len(chosen.shape) != 1:
        raise CAMError(
            f"target {target!r} returned shape {tuple(chosen.shape)} for an output of shape {tuple(out.shape)}; "
            "it must return one score per image, shape (N,)"
        )
    return ops.cast(chosen, "float32")


def describe(target: Any) -> str:
    """A short name for a target, for class lists and status lines: its repr, or a function's name."""
    name = getattr(target, "__name__", None)
    text = f"{name}()" if name and name != "<lambda>" else repr(target)
    return text if len(text) <= 60 else text[:57] + "..."
