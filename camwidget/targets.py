"""What a map explains: a target turns the model's output into one score per image, y (N,).

compute_cam(..., target=...) takes any callable of the output tensor (the output that `output=` selects:
its logits under score="auto" when the model ends in a softmax or sigmoid, the output as it is under
score="probability") that returns shape (N,), written with keras.ops (on TensorFlow, tf ops too) so that it can
be differentiated. The map then says which places raised y. Ready-made targets:

    ClassScore(c)          y = out[:, c]                                   (the default, a class)
    Unit(i)                y = out[:, i...]        one unit of a regression output
    Region(c, mask)        y = sum_{(i,j) in mask} out[:, i, j, c]         a segmentation class's pixels
    Box(b, c, offset=4)    y = out[:, b, offset + c]                       a detection's box b, class c

Without a target, a segmentation output (N, H, W, C) is explained per class as Region(c, the pixels the
model predicts as c) (see engine._region_scores). Region is pytorch-grad-cam's SemanticSegmentationTarget; Box assumes boxes (N, B, offset + C) whose last axis
holds `offset` coordinates and then the class scores.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import keras
import numpy as np
from keras import ops

from .errors import CAMError


@dataclass(frozen=True, eq=False)  # hashed by identity: each target object is traced once
class ClassScore:
    class_index: int

    def __call__(self, out: Any) -> Any:
        flat = ops.reshape(out, (-1, int(np.prod(out.shape[1:]))))
        return flat[:, self.class_index]


@dataclass(frozen=True, eq=False)
class Unit:
    index: int | tuple[int, ...]

    def __call__(self, out: Any) -> Any:
        index = self.index if isinstance(self.index, tuple) else (self.index,)
        return out[(slice(None), *index)]


@dataclass(frozen=True, eq=False)
class Region:
    class_index: int
    mask: Any  # (H, W) bool or 0/1 at the output's own spatial size

    def __repr__(self) -> str:
        mask = np.asarray(self.mask)
        return f"Region(class {self.class_index}, mask {'×'.join(map(str, mask.shape))}, {int((mask != 0).sum())} pixels)"

    def __call__(self, out: Any) -> Any:
        mask = np.asarray(self.mask, np.float32)
        if len(out.shape) != 4 or tuple(out.shape[1:3]) != mask.shape:
            raise CAMError(
                f"Region needs a segmentation output (N, H, W, classes) and a mask of its (H, W); the output is "
                f"{tuple(out.shape)} and the mask {mask.shape}"
            )
        return ops.sum(out[..., self.class_index] * mask, axis=(1, 2))


@dataclass(frozen=True, eq=False)
class Box:
    box: int
    class_index: int
    offset: int = 4  # coordinates before the class scores on the last axis

    def __call__(self, out: Any) -> Any:
        if len(out.shape) != 3:
            raise CAMError(f"Box needs a detection output (N, boxes, {self.offset} + classes), not {tuple(out.shape)}")
        return out[:, self.box, self.offset + self.class_index]


def check_target(target: Any) -> Any:
    if target is not None and not callable(target):
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
