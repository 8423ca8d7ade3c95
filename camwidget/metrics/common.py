"""What every metric shares: the model, images and maps checked and read once (the engine, the output, each
image's class and its score), maps resized to the images and ranked, the baselines, and the argument checks."""

from __future__ import annotations

import dataclasses
from typing import Any

import cv2
import keras
import numpy as np

from camwidget.engines import CAMEngine, class_vector, engine_for, num_classes
from camwidget.errors import CAMError
from camwidget.inputs.feed import Feed, make_feed
from camwidget.inputs.images import model_batch

BASELINES = ("mean", "blur", "zero")
_CURVE_BATCH = 32  # perturbed copies per forward pass


# -- inputs, checked -----------------------------------------------------------------------------------------


@dataclasses.dataclass
class _Setup:
    engine: CAMEngine
    images: np.ndarray  # (N, H, W, C) float32
    ranks: np.ndarray  # (N, H, W) int32: 0 for the most relevant pixel
    maps: np.ndarray  # (N, H, W) float32, at the images' size
    classes: np.ndarray  # (N,) int32
    output: int
    original: np.ndarray  # (N,) the class's score on the images as they are
    feed: Feed | None = None  # a model with several inputs: where the images go, the others' values


def _setup(
    model: keras.Model,
    images: Any,
    maps: Any,
    class_index: Any,
    output: str | int | None,
    input: str | int | None = None,
    other_inputs: Any = None,
) -> _Setup:
    engine = engine_for(model)
    engine.sync()
    feed = make_feed(model, input, other_inputs)
    batch = model_batch(images)
    if feed is not None:
        feed.rows(len(batch))  # one row, or one per image: else an error that says so, before any work
    layout = engine.layout(batch.shape[1:], feed)
    index = engine.output_index(layout, output)
    try:
        n_classes = num_classes(layout, index)
    except CAMError as exc:
        raise CAMError(f"these metrics score a class, and {exc}") from None
    if n_classes < 2:
        raise CAMError(
            f"these metrics score a class's probability, and output {layout.output_names[index]!r} has one unit without "
            "a sigmoid: a regression, with no classes; use a target with compute_cam to explain it"
        )
    maps = _checked_maps(maps, batch)
    full = np.stack([_resize(m, *batch.shape[1:3]) for m in maps])
    probabilities = engine.class_probabilities(batch, index, feed)
    classes = class_vector(class_index, len(batch), n_classes)
    classes = np.where(classes < 0, probabilities.argmax(axis=1), classes).astype(np.int32)
    original = probabilities[np.arange(len(batch)), classes]
    return _Setup(engine, batch, rank_pixels(full), full, classes, index, original, feed)


def _checked_maps(maps: Any, images: np.ndarray) -> np.ndarray:
    array = np.asarray(maps, np.float32)
    if array.ndim == 2:
        array = array[None]
    if array.ndim != 3 or len(array) != len(images):
        raise CAMError(
            f"maps have shape {np.asarray(maps).shape}; expected one map per image, (N, h, w) with N = {len(images)} "
            f"(as compute_cam returns for images of shape {images.shape})"
        )
    if not np.isfinite(array).all():
        raise CAMError("maps contain NaN or infinite values")
    return array


def _resize(m: np.ndarray, height: int, width: int) -> np.ndarray:
    if m.shape == (height, width):
        return m.astype(np.float32)
    return cv2.resize(np.ascontiguousarray(m, np.float32), (width, height), interpolation=cv2.INTER_LINEAR)


def rank_pixels(maps: np.ndarray) -> np.ndarray:
    """Each pixel's rank by its map's value, 0 the most relevant.

    Args:
        maps: (N, H, W).

    Returns:
        int32 (N, H, W) ranks; ties in pixel order (a stable sort).
    """
    flat = maps.reshape(len(maps), -1)
    order = np.argsort(-flat, axis=1, kind="stable")
    ranks = np.empty_like(order)
    np.put_along_axis(ranks, order, np.arange(flat.shape[1])[None].repeat(len(flat), 0), axis=1)
    return ranks.reshape(maps.shape).astype(np.int32)


def baseline_of(images: np.ndarray, baseline: str | float | np.ndarray = "mean") -> np.ndarray:
    """The state pixels are removed to, by the deletion and insertion metrics.

    Args:
        images: (N, H, W, C).
        baseline: "blur" (Gaussian, sigma 5% of the longer side), "mean" (each image's mean colour), "zero",
            a finite number, or an array of the images' shape.

    Returns:
        float32 (N, H, W, C).

    Raises:
        CAMError: an unknown name, a number that is not finite, or an array of another shape or with NaN.
    """
    if isinstance(baseline, str):
        if baseline == "blur":
            sigma = 0.05 * max(images.shape[1:3])
            return np.stack([cv2.GaussianBlur(im, (0, 0), sigma).reshape(im.shape) for im in images])
        if baseline == "mean":
            return np.broadcast_to(images.mean(axis=(1, 2), keepdims=True), images.shape).astype(np.float32)
        if baseline == "zero":
            return np.zeros_like(images)
        raise CAMError(
            f"baseline must be one of {', '.join(map(repr, BASELINES))}, a number or an array, not {baseline!r}"
        )
    if isinstance(baseline, (int, float, np.number)) and not isinstance(baseline, bool):
        if not np.isfinite(baseline):
            raise CAMError(
                f"baseline must be a finite number (or 'mean', 'blur', 'zero', or an array), not {baseline!r}"
            )
        return np.full_like(images, float(baseline))
    array = np.asarray(baseline, np.float32)
    if array.shape != images.shape:
        raise CAMError(f"baseline has shape {array.shape}; expected the images' shape {images.shape}")
    if not np.isfinite(array).all():
        raise CAMError(f"baseline contains {int((~np.isfinite(array)).sum())} NaN or infinite values; give finite ones")
    return array


def _check_steps(steps: Any) -> int:
    return _check_int(steps, "steps", 1)


def _check_int(value: Any, name: str, low: int) -> int:
    """An option that counts (steps, epochs, a seed, a tolerance in pixels): an int of at least `low`."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or value < low:
        raise CAMError(f"{name} must be an int of at least {low}, not {value!r}")
    return int(value)


def _check_number(value: Any, name: str, low: float) -> float:
    """A real-valued option (noise): a finite number of at least `low`."""
    number = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))
    if not number or not np.isfinite(value) or value < low:
        raise CAMError(f"{name} must be a finite number of at least {low:g}, not {value!r}")
    return float(value)
