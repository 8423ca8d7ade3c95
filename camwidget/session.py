"""The explorer's model side, without widgets: images, caches, views and diagnostics.

A view is (image, layer, class, method) -> a map in [0, 1]. The layer's activations are kept per
(image, layer), so a class change runs only the layers after the chosen one (engine.recapture), and maps
are kept per view, so going back to one costs nothing.
"""

from __future__ import annotations

import json
import os
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any, Generic, TypeVar

import cv2
import keras
import numpy as np

from . import preprocess as preprocessing
from .adapter import LayerInfo, ModelLayout
from .engine import LayerCapture, engine_for, num_classes
from .errors import CAMError, ImageError
from .images import ImageLike, load_images, resize_to, to_rgb_uint8
from .methods import MethodInputs, get_method, method_maps, normalize_maps

K = TypeVar("K")
V = TypeVar("V")


class LRU(Generic[K, V]):
    """A small least-recently-used cache, bounded by a total cost (entries, or bytes)."""

    def __init__(self, budget: float, cost: Callable[[V], float] = lambda v: 1.0) -> None:
        self._items: OrderedDict[K, V] = OrderedDict()
        self._budget, self._cost, self._used = budget, cost, 0.0

    def get(self, key: K) -> V | None:
        if key in self._items:
            self._items.move_to_end(key)
            return self._items[key]
        return None

    def put(self, key: K, value: V) -> None:
        if key in self._items:
            self._used -= self._cost(self._items.pop(key))
        self._items[key] = value
        self._used += self._cost(value)
        while self._used > self._budget and len(self._items) > 1:
            _, dropped = self._items.popitem(last=False)
            self._used -= self._cost(dropped)

    def clear(self) -> None:
        self._items.clear()
        self._used = 0.0

    def __len__(self) -> int:
        return len(self._items)


@dataclass(frozen=True)
class View:
    """One computed map and what the status line says about it."""

    cam: np.ndarray  # (h, w) float32 in [0, 1]
    layer: LayerInfo
    class_index: int
    method: str
    probabilities: np.ndarray  # (C,) the model's output for this image
    seconds: float  # how long computing it took (0 when it came from the cache)
    how: str  # "cached" | "after-layer pass" | "full pass"
    diagnostic: str | None  # plain words when the map is blank


def imagenet_class_names() -> list[str]:
    text = resources.files("camwidget").joinpath("data/imagenet_classes.json").read_text(encoding="utf-8")
    return [entry[1] for entry in json.loads(text)]


def resolve_class_names(class_names: Sequence[str] | Mapping[int, str] | None, n_classes: int) -> list[str]:
    """One display name per class: the given list or dict, ImageNet's for 1000 classes, else 'class i'."""
    names = [f"class {i}" for i in range(n_classes)]
    if class_names is None:
        return imagenet_class_names() if n_classes == 1000 else names
    if isinstance(class_names, Mapping):
        for key, name in class_names.items():
            if not isinstance(key, (int, np.integer)) or not 0 <= key < n_classes:
                raise CAMError(f"class_names has key {key!r}; keys must be class indices 0..{n_classes - 1}")
            names[int(key)] = str(name)
        return names
    if isinstance(class_names, str) or not isinstance(class_names, Sequence):
        raise TypeError(f"class_names must be a list of names or a dict {{index: name}}, not {type(class_names).__name__}")
    if len(class_names) != n_classes:
        raise CAMError(f"class_names has {len(class_names)} names, but the model's output has {n_classes} classes")
    return [str(n) for n in class_names]


class ExplorerSession:
    """Everything CAMExplorer shows, computed and cached; no widgets here."""

    def __init__(
        self,
        model: keras.Model,
        images: ImageLike | Sequence[ImageLike],
        preprocess: Callable[[np.ndarray], np.ndarray] | str | None = None,
        class_names: Sequence[str] | Mapping[int, str] | None = None,
        output: str | int | None = None,
    ) -> None:
        self.engine = engine_for(model)
        self.preprocessing = preprocessing.resolve(model, preprocess)
        self.pixels: list[np.ndarray] = load_images(images)
        self.names: list[str] = self._names_for(images, len(self.pixels))
        self._inputs: dict[int, np.ndarray] = {}
        first = self.layout(0)
        self.output = self.engine.output_index(first, output)
        self.n_classes = num_classes(first, self.output)
        self.class_names = resolve_class_names(class_names, self.n_classes)
        self._activations: LRU[tuple[int, str], np.ndarray] = LRU(256 * 2**20, lambda a: a.nbytes)
        self._views: LRU[tuple[int, str, int, str], View] = LRU(256)
        self._probabilities: dict[int, np.ndarray] = {}
        self._recent: tuple[tuple[int, str], LayerCapture, str, float] | None = None
        self.scorecam_channels: int | None = 64  # Score-CAM runs one forward pass per channel: bound it
        self.model_calls = 0  # passes run, full or after-layer: lets tests see that a redraw ran no model

    # -- images --------------------------------------------------------------------------------------------

    @staticmethod
    def _names_for(images: Any, count: int) -> list[str]:
        """A label per image for the image selector: a file's name, else 'image i'."""
        sources = list(images) if isinstance(images, (list, tuple)) else [images]
        return [
            os.path.basename(os.fspath(src)) if isinstance(src, (str, os.PathLike)) else f"image {i}"
            for i, src in zip(range(count), sources + [None] * count)
        ]

    def add_image(self, image: ImageLike, name: str) -> int:
        """Add an image (a path, array, PIL image or file bytes); returns its index."""
        pixels = to_rgb_uint8(image, repr(name))
        prepared = self._prepare(pixels)
        self.layout_for_input(prepared)  # the model must take it: raises before anything is kept
        self.pixels.append(pixels)
        self.names.append(name)
        self._inputs[len(self.pixels) - 1] = prepared
        return len(self.pixels) - 1

    def model_input(self, index: int) -> np.ndarray:
        """Image `index` as the model takes it: resized to its input size, channels matched, preprocessed."""
        if index not in self._inputs:
            self._inputs[index] = self._prepare(self.pixels[index])
        return self._inputs[index]

    def _prepare(self, pixels: np.ndarray) -> np.ndarray:
        expected = self.engine.expected_input_shape() or (None, None, 3)
        h, w, c = (tuple(expected) + (None, None, None))[:3]
        resized = resize_to(pixels, h, w)
        if c == 1:
            resized = cv2.cvtColor(resized, cv2.COLOR_RGB2GRAY)[..., None]
        elif c not in (None, 3):
            raise ImageError(f"the model takes {c} channels; camwidget explains models of RGB (3) or grayscale (1) images")
        batch = self.preprocessing.fn(resized[None].astype(np.float32))
        if not np.isfinite(batch).all():
            raise ImageError("the preprocessing produced NaN or infinite values")
        return batch

    def layout(self, index: int) -> ModelLayout:
        return self.layout_for_input(self.model_input(index))

    def layout_for_input(self, x: np.ndarray) -> ModelLayout:
        return self.engine.layout(x.shape[1:])

    # -- views ---------------------------------------------------------------------------------------------

    def probabilities(self, index: int, layer: str | None = None) -> np.ndarray:
        """The model's output for image `index`; if not known yet, one pass at `layer` finds it (and is kept,
        so the view that follows costs nothing more)."""
        if index not in self._probabilities:
            self._capture(index, self.layout(index).resolve(layer), -1)
        return self._probabilities[index]

    def view(self, index: int, layer: str | None, class_index: int | None, method: str) -> View:
        """The map of image `index` at `layer` for `class_index` (None: the top class) by `method`."""
        info = self.layout(index).resolve(layer)
        cam_method = get_method(method)
        if class_index is None:
            class_index = int(np.argmax(self.probabilities(index, info.path)))
        elif not 0 <= class_index < self.n_classes:
            raise CAMError(f"class_index {class_index} is out of range: the model has {self.n_classes} classes")
        key = (index, info.path, class_index, cam_method.name)
        cached = self._views.get(key)
        if cached is not None:
            return View(**{**cached.__dict__, "seconds": 0.0, "how": "cached"})
        start = time.perf_counter()
        capture, how, pass_seconds = self._capture(index, info, class_index)
        inputs = MethodInputs(
            capture, self.model_input(index), self.engine, info, self.layout(index), self.output, "auto",
            self.scorecam_channels,
        )
        raw = method_maps(cam_method, inputs)
        cam = normalize_maps(raw)[0]
        view = View(
            cam=cam,
            layer=info,
            class_index=int(capture.class_index[0]),
            method=cam_method.name,
            probabilities=capture.probabilities[0],
            seconds=time.perf_counter() - start + pass_seconds,
            how=how,
            diagnostic=self._diagnose(capture, raw[0], info),
        )
        self._views.put((index, info.path, view.class_index, cam_method.name), view)
        return view

    def _capture(self, index: int, info: LayerInfo, class_index: int) -> tuple[LayerCapture, str, float]:
        """(capture, how it was computed, seconds not yet reported): the pass that found an image's
        probabilities is reused by the view that follows, and its time is reported with that view."""
        recent = self._recent
        if recent is not None and recent[0] == (index, info.path) and class_index in (-1, recent[1].class_index[0]):
            self._recent = None
            return recent[1], recent[2], recent[3]
        classes = np.array([class_index], np.int32)
        self.model_calls += 1
        start = time.perf_counter()
        capture, how = self._run(index, info, classes)
        self._recent = ((index, info.path), capture, how, time.perf_counter() - start)
        return capture, how, 0.0

    def _run(self, index: int, info: LayerInfo, classes: np.ndarray) -> tuple[LayerCapture, str]:
        activations = self._activations.get((index, info.path))
        if activations is not None:
            capture = self.engine.recapture(activations, info, classes, self.output, "auto")
            if capture is not None:
                return capture, "after-layer pass"
        capture = self.engine.capture(self.model_input(index), info, classes, self.output, "auto")
        self._activations.put((index, info.path), capture.activations)
        self._probabilities[index] = capture.probabilities[0]
        return capture, "full pass"

    def _diagnose(self, capture: LayerCapture, raw: np.ndarray, info: LayerInfo) -> str | None:
        name = self.class_names[int(capture.class_index[0])]
        if not np.any(capture.gradients):
            return (
                f"gradients vanished at {info.path}: the score for '{name}' does not change with this layer "
                "(dead or saturated units); try a later layer"
            )
        if not np.any(capture.activations):
            return f"layer {info.path} is all zero for this image, so there is nothing to weight"
        if raw.max() <= 0:
            return f"no positive evidence for '{name}' at {info.path}: every location lowers its score"
        return None

    def clear(self) -> None:
        self._activations.clear()
        self._views.clear()
        self._inputs.clear()
        self._probabilities.clear()
        self._recent = None
