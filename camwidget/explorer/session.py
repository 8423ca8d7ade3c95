"""The explorer's model side, without widgets: images, caches, views and diagnostics.

A view is (image, layer, class, method) -> a map in [0, 1]. The layer's activations are kept per
(image, layer), so a class change runs only the layers after the chosen one (engine.recapture), and maps
are kept per view, so going back to one costs nothing.
"""

from __future__ import annotations

import dataclasses
import gc
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import cv2
import keras
import numpy as np

from camwidget.cache import LRU, give_back_freed_memory
from camwidget.classes import resolve_class_names
from camwidget.engines import LayerCapture, LayerInfo, ModelLayout, is_per_position
from camwidget.errors import CAMError, ImageError
from camwidget.explain import AUGMENTATIONS, Explainer, Options
from camwidget.inputs import preprocess as preprocessing
from camwidget.inputs.feed import Feed
from camwidget.inputs.images import (
    MAX_PIXELS,
    ImageLike,
    Images,
    ValueRange,
    check_value_range,
    load_pictures,
    picture_names,
    read_picture,
)
from camwidget.inputs.samples import read_clips, read_signals, screen_map, signal_picture
from camwidget.methods import normalize_maps
from camwidget.targets import describe as describe_target

_WARM_UP_DELAY = 0.3  # s a view is looked at before the warm-up pass starts


@dataclass(frozen=True)
class View:
    """One computed map and what the status line says about it."""

    cam: np.ndarray  # (h, w) float32 in [0, 1]: the map as drawn (a signal's (1, l); a clip frame's slice)
    layer: LayerInfo
    class_index: int
    method: str
    probabilities: np.ndarray  # (C,) the model's output for this image
    seconds: float  # how long computing it took (0 when it came from the cache)
    how: str  # "cached" | "after-layer pass" | "full pass"
    diagnostic: str | None  # plain words when the map is blank
    raw: np.ndarray | None = None  # (h, w) the method's map before ReLU and scaling (None: aug_smooth's average)
    full: np.ndarray | None = None  # the whole map where it is not 2-D: (l,) of a signal, (d, h, w) of a clip


@dataclass
class _Passes:
    """What passes gave for one (image, class): each layer's gradients, from one or more passes."""

    gradients: dict[str, np.ndarray]
    scores: np.ndarray
    probabilities: np.ndarray
    class_index: np.ndarray
    unreported_seconds: float  # a pass run to find the top class, reported with the view that uses it
    reached_all: bool = False  # a pass reached every spatial layer (the budget allowing)

    @property
    def nbytes(self) -> int:
        return sum(g.nbytes for g in self.gradients.values())


class ExplorerSession:
    """Everything CAMExplorer shows, computed and cached; no widgets here.

    A view is (image, layer, class, method and options) -> a map in [0, 1]. Caches, all bounded, all dropped
    when the model changes (checked before every view, see :mod:`camwidget.engines.model_watch`):
    * activations per (image, layer), class-free, and gradients per (image, class, layer). The first view
      of an image runs one pass at its layer that also gives every spatial layer after it; the first visit
      below the deepest layer reached runs one pass that reaches every spatial layer (within
      `capture_bytes`), so that from then on every layer of that image and class is ready;
    * a class change runs only the layers after the chosen one, from its cached activations;
    * maps per view, so going back to one costs nothing.
    """

    def __init__(
        self,
        model: keras.Model,
        images: Images,
        preprocess: Callable[[np.ndarray], np.ndarray] | str | None = None,
        class_names: Sequence[str] | Mapping[int, str] | None = None,
        output: str | int | None = None,
        max_side: int = 1024,
        capture_bytes: int = 192 * 2**20,
        value_range: ValueRange | None = None,
        max_pixels: int = MAX_PIXELS,
        warm_up: bool = True,
        feed: Feed | None = None,
        target: Any = None,
        grid: tuple[int, int] | None = None,
        leading_tokens: int | None = None,
    ) -> None:
        self._lock = threading.RLock()  # the state and the caches, against the warm-up thread
        self._computing = threading.RLock()  # one view or probabilities at a time (explorer's worker, a cell)
        _check_max_side(max_side)
        _check_max_pixels(max_pixels)
        self.value_range = None if value_range is None else check_value_range(value_range)
        self.max_pixels = int(max_pixels)
        if feed is not None and any(len(value) > 1 for value in feed.others):
            raise CAMError(
                "the explorer gives every image the same other inputs: give other_inputs one value each (not a batch)"
            )
        self.explainer = Explainer(
            model, output=output, feed=feed, target=target, grid=grid, leading_tokens=leading_tokens
        )
        self.engine = self.explainer.engine
        self.max_side = int(max_side)
        self.capture_bytes = capture_bytes
        expected = self.explainer.expected_input_shape()
        self.kind = {2: "signal", 4: "volume"}.get(len(expected) if expected else 3, "image")  # what one input is
        self.preprocessing = (
            _plain_preprocessing(preprocess) if self.kind == "signal" else preprocessing.resolve(model, preprocess)
        )
        # pixels: per image RGB uint8 (H, W, 3); per signal its line picture; per clip its frames (T, H, W, 3)
        self.pixels: list[np.ndarray]
        self.signals: list[np.ndarray] = []  # the signals themselves (L, C), for a model of signals
        if self.kind == "image":
            pictures = load_pictures(images, self.value_range, self.max_pixels)
            self.pixels = [p.pixels for p in pictures]
            self.notes: list[tuple[str, ...]] = [p.notes for p in pictures]  # how each picture was read
            self.names: list[str] = picture_names(images, len(self.pixels))
        else:
            self.pixels, self.signals, names = self._read_samples(images)
            self.notes = [() for _ in self.pixels]
            noun = "signal" if self.kind == "signal" else "clip"
            self.names = names or [f"{noun} {i}" for i in range(len(self.pixels))]
        self._display: dict[int, np.ndarray] = {}
        self._inputs: dict[int, np.ndarray] = {}
        self.resized: dict[int, tuple[tuple[int, int], tuple[int, int]]] = {}  # index -> (from, to) (h, w)
        # activations and gradients together stay within capture_bytes (they are the same size per layer)
        self._activations: LRU[tuple[int, str], np.ndarray] = LRU(capture_bytes / 2, lambda a: a.nbytes)
        self._passes: LRU[tuple[int, int, str], _Passes] = LRU(capture_bytes / 2, lambda p: p.nbytes)
        self._views: LRU[tuple[Any, ...], View] = LRU(256)
        self._probabilities: dict[int, np.ndarray] = {}
        self._state = self.explainer.sync()
        first = self.layout(0)
        self.output, self.n_classes = self._resolve_output(first)
        self.class_names = self._class_names(class_names)
        self._given_class_names = class_names
        self.scorecam_channels: int | None = 64  # Score-CAM runs one forward pass per channel: bound it
        self.model_calls = 0  # passes run, full or after-layer: lets tests see that a redraw ran no model
        self.warm_ups_enabled = warm_up
        self.warm_up_passes = 0  # passes run in the background
        self._worker: ThreadPoolExecutor | None = None
        self._warming: dict[tuple[int, int, str], Future[None]] = {}
        self._hurry = threading.Event()  # set: a view waits for the warm-up, so it starts without its delay
        self._wanted: tuple[int, int, str] | None = None
        self._closed = False

    def _resolve_output(self, layout: ModelLayout) -> tuple[int, int]:
        """(the output's index, how many classes the class list has): one "class", the target, with a target."""
        if self.explainer.target is not None:
            return self.engine.output_index(layout, self.explainer.output_spec, classes=False), 1
        _, output, n_classes = self.explainer.resolve(layout)
        return output, n_classes

    def _class_names(self, given: Sequence[str] | Mapping[int, str] | None) -> list[str]:
        if self.explainer.target is None:
            return resolve_class_names(given, self.n_classes)
        if given is not None and not (isinstance(given, Sequence) and len(given) == 1):
            raise CAMError("with target=, the class list is the target alone: give class_names=None or one name")
        return [str(given[0]) if given else f"target {describe_target(self.explainer.target)}"]

    @property
    def per_position(self) -> bool:
        """The output scores classes per pixel (a segmentation): a class explains the pixels predicted as it,
        and its "probability" is the share of the pixels it covers."""
        layout = self.layout(0)
        return self.explainer.target is None and is_per_position(
            layout.output_shapes[self.output], len(layout.input_shape)
        )

    # -- the model as it is now ----------------------------------------------------------------------------

    def sync(self) -> bool:
        """Drop every cached value computed from an earlier state of the model; True if there were such."""
        state = self.explainer.sync()
        with self._lock:
            if state == self._state:
                return False
            structure_changed = state[0] != self._state[0]
            self._state = state
            self._drop_values()
        if structure_changed:
            self._restructured()
        return True

    def _restructured(self) -> None:
        """After layers were added or replaced: prepare the images again (the input size may have changed) and
        read the output's classes again (a new head may have another number of them)."""
        self._inputs.clear()
        self.resized.clear()
        self.output, n_classes = self._resolve_output(self.layout(0))
        if n_classes != self.n_classes:
            self.n_classes = n_classes
            given = self._given_class_names
            fits = given is not None and len(given) == n_classes and not isinstance(given, Mapping)
            self.class_names = resolve_class_names(given if fits else None, n_classes)

    def _drop_values(self) -> None:
        self._activations.clear()
        self._passes.clear()
        self._views.clear()
        self._probabilities.clear()

    def refresh(self) -> None:
        """Forget everything computed and traced for the model, as if it had changed in every way."""
        self.explainer.engine.forget()
        self._drop_values()
        self._state = self.explainer.sync()
        self._restructured()

    # -- images --------------------------------------------------------------------------------------------

    def add_image(self, image: ImageLike, name: str, value_range: ValueRange | None = None) -> int:
        """Add an image (a path, array, PIL image or file bytes); returns its index. Nothing is kept unless the
        picture can be read and the model takes it."""
        if self.kind != "image":
            pixels_list, signals, _ = self._read_samples({name: image})
            pixels, notes = pixels_list[0], ()
            prepared, resized = self._prepare(signals[0] if signals else pixels)
        else:
            picture = read_picture(image, repr(name), value_range or self.value_range, self.max_pixels)
            pixels, notes = picture.pixels, picture.notes
            prepared, resized = self._prepare(pixels)
        self.layout_for_input(prepared)  # the model must take it: raises before anything is kept
        self.pixels.append(pixels)
        if self.kind == "signal":
            self.signals.append(signals[0])
        self.notes.append(notes)
        self.names.append(name)
        index = len(self.pixels) - 1
        self._inputs[index] = prepared
        if resized:
            self.resized[index] = resized
        return index

    def picture(self, index: int, frame: int = 0) -> np.ndarray:
        """What image `index` shows at its own size, RGB uint8 (H, W, 3): the picture, a signal's line
        picture, or a clip's frame `frame`."""
        pixels = self.pixels[index]
        return pixels[min(frame, len(pixels) - 1)] if self.kind == "volume" else pixels

    def frames(self, index: int) -> int:
        """How many frames image `index` has (1 unless it is a clip)."""
        return len(self.pixels[index]) if self.kind == "volume" else 1

    def display_pixels(self, index: int, frame: int = 0) -> np.ndarray:
        """Image `index` (a clip's frame `frame`) at most DISPLAY_SIDE pixels on its longer side: what the
        screen shows, so that a slider move costs the same for any picture size."""
        if self.kind == "volume":
            frame = min(frame, self.frames(index) - 1)
            key: Any = (index, frame)
        else:
            key = index
        if key not in self._display:
            pixels = self.picture(index, frame)
            scale = DISPLAY_SIDE / max(pixels.shape[:2])
            if scale >= 1:
                self._display[key] = pixels
            else:
                size = (max(1, round(pixels.shape[1] * scale)), max(1, round(pixels.shape[0] * scale)))
                self._display[key] = cv2.resize(pixels, size, interpolation=cv2.INTER_AREA)
        return self._display[key]

    def model_input(self, index: int) -> np.ndarray:
        """Image `index` as the model takes it: resized to its input size (at most `max_side` pixels on the
        longer side where the model takes any size), channels matched, preprocessed."""
        if index not in self._inputs:
            self._inputs[index], resized = self._prepare(
                self.signals[index] if self.kind == "signal" else self.pixels[index]
            )
            if resized:
                self.resized[index] = resized
        return self._inputs[index]

    def _prepare(self, pixels: np.ndarray) -> tuple[np.ndarray, tuple[tuple[int, int], tuple[int, int]] | None]:
        expected = self.explainer.expected_input_shape() or (None, None, 3)
        if self.kind == "signal":
            return _signal_input(pixels, expected, self.preprocessing.fn), None
        if self.kind == "volume":
            return _clip_input(pixels, expected, self.max_side, self.preprocessing.fn)
        return preprocessing.model_input(pixels, expected, self.max_side, self.preprocessing.fn)

    def _read_samples(self, given: Any) -> tuple[list[np.ndarray], list[np.ndarray], list[str] | None]:
        """(what each shows, the signals themselves (signals only), names) for a model of signals or clips."""
        if self.kind == "signal":
            signals, names = read_signals(given)
            return [signal_picture(s) for s in signals], signals, names
        clips, names = read_clips(given, self.value_range, self.max_pixels)
        return clips, [], names

    def layout(self, index: int) -> ModelLayout:
        return self.layout_for_input(self.model_input(index))

    def layout_for_input(self, x: np.ndarray) -> ModelLayout:
        return self.explainer.layout(x.shape[1:])

    # -- views ---------------------------------------------------------------------------------------------

    def probabilities(self, index: int, layer: str | None = None) -> np.ndarray:
        """The model's output for image `index`; if not known yet, one pass at `layer` finds it (and is kept,
        so the view that follows costs nothing more)."""
        with self._computing:
            self.sync()
            if index not in self._probabilities:
                self._passes_for(index, self.layout(index).resolve(layer), -1)
            return self._probabilities[index]

    def view(
        self,
        index: int,
        layer: str | None,
        class_index: int | None,
        method: str,
        *,
        score: str = "auto",
        eigen_smooth: bool = False,
        aug_smooth: bool = False,
        frame: int = 0,
    ) -> View:
        """The map of image `index` at `layer` for `class_index` (None: the top class) by `method`; for a clip,
        as drawn on frame `frame`. Safe to call from any thread: views are computed one at a time."""
        with self._computing:
            view = self._view(index, layer, class_index, method, score, eigen_smooth, aug_smooth)
        return self._on_screen(view, index, frame)

    def _on_screen(self, view: View, index: int, frame: int) -> View:
        """A view whose maps are 2-D as drawn: a signal's (l,) as (1, l), a clip's slice for `frame`."""
        if self.kind == "image":
            return view
        frames = self.frames(index)
        return dataclasses.replace(
            view,
            cam=screen_map(view.cam, self.kind, frame, frames),
            raw=None if view.raw is None else screen_map(view.raw, self.kind, frame, frames),
            full=view.cam,
        )

    def _view(
        self,
        index: int,
        layer: str | None,
        class_index: int | None,
        method: str,
        score: str,
        eigen_smooth: bool,
        aug_smooth: bool,
    ) -> View:
        self.sync()
        layout = self.layout(index)
        info = layout.resolve(layer)
        options = Options(method, score, eigen_smooth, aug_smooth, self.scorecam_channels).checked()
        explainer = self._explainer_for(options)
        if class_index is None:
            class_index = int(np.argmax(self.probabilities(index, info.path)))
        elif not 0 <= class_index < self.n_classes:
            raise CAMError(f"class_index {class_index} is out of range: the model has {self.n_classes} classes")
        key = (index, info.path, class_index, options)
        cached = self._views.get(key)
        if cached is not None:
            return dataclasses.replace(cached, seconds=0.0, how="cached")
        start = time.perf_counter()
        x = self.model_input(index)
        if options.aug_smooth:
            self.model_calls += 1
            cam = explainer.explain(x, class_index, info.path)[0]
            probs = self.probabilities(index, info.path)
            view = View(
                cam,
                info,
                class_index,
                options.method,
                probs,
                time.perf_counter() - start,
                f"{len(AUGMENTATIONS)} augmented passes",
                None,
            )
        else:
            capture, how, earlier = self._layer_capture(index, info, class_index, options.score)
            raw = explainer.maps_from(capture, x, info, layout, self.output, self.scorecam_channels)
            view = View(
                cam=normalize_maps(raw)[0],
                layer=info,
                class_index=int(capture.class_index[0]),
                method=options.method,
                probabilities=capture.probabilities[0],
                seconds=time.perf_counter() - start + earlier,
                how=how,
                diagnostic=self._diagnose(capture, raw[0], info),
                raw=raw[0],
            )
        self._views.put(key, view)
        return view

    def _explainer_for(self, options: Options) -> Explainer:
        if options != self.explainer.options:
            self.explainer = self.explainer.with_options(**dataclasses.asdict(options))  # shares compiled passes
        return self.explainer

    def _layer_capture(
        self, index: int, info: LayerInfo, class_index: int, score: str, _again: bool = False
    ) -> tuple[LayerCapture, str, float]:
        """(capture at `info`, how it was had, seconds of an earlier pass to report with it):
        cached; or the layers after `info` from its cached activations (a class change); or one full pass
        (first view of an image: at `info` and every spatial layer after it; first visit below the deepest
        layer reached: at every spatial layer)."""
        passes = self._passes.get((index, class_index, score))
        activations = self._activations.get((index, info.path))
        if passes is not None and info.path in passes.gradients and activations is not None:
            earlier, passes.unreported_seconds = passes.unreported_seconds, 0.0
            how = "full pass" if earlier else "from an earlier pass"
            capture = LayerCapture(
                activations, passes.gradients[info.path], passes.scores, passes.probabilities, passes.class_index
            )
            return capture, how, earlier
        if activations is not None and passes is None:
            self.model_calls += 1
            capture = (
                None
                if self.explainer.target is not None
                else self.engine.recapture(
                    activations,
                    info,
                    np.array([class_index], np.int32),
                    self.output,
                    score,
                    self.explainer.feed,
                    self.model_input(index).shape[1:],
                )
            )
            if capture is not None:
                self._keep(index, class_index, score, {info.path: capture}, capture, 0.0)
                return capture, "after-layer pass", 0.0
        if passes is not None and self._wait_for_warm_up((index, class_index, score)) and not _again:
            return self._layer_capture(index, info, class_index, score, _again=True)
        captures = self._full_pass(index, info, class_index, score, deepest=passes is not None)
        return captures[info.path], "full pass", 0.0

    def _passes_for(self, index: int, info: LayerInfo, class_index: int) -> None:
        """Run the pass that finds image `index`'s output (and its top class's gradients), unless known."""
        self._full_pass(index, info, class_index, self.explainer.options.score, deepest=False, report_later=True)

    def _full_pass(
        self,
        index: int,
        info: LayerInfo,
        class_index: int,
        score: str,
        deepest: bool,
        report_later: bool = False,
        state: tuple[int, int] | None = None,
    ) -> dict[str, LayerCapture]:
        """One full pass for image `index` that captures `info`: at the default layer and every spatial layer
        after it where `info` is one of those, else (or with `deepest`) at every spatial layer, the budget
        allowing, so that a scrub through the layers needs no further pass."""
        layout = self.layout(index)
        layers = [layout.layers[p] for p in layout.spatial_paths()]
        # Two kinds of pass only, so that few are traced: from the default layer on (about one forward pass,
        # what most first views need), or from the first spatial layer on (a backward pass through it all).
        start = layout.layers[layout.default_path()].order
        if deepest or info.order < start:
            start = layers[0].order
        reached_all = start == layers[0].order
        chosen = _within([i for i in layers if i.order >= start], info, self.capture_bytes)
        if state is None:
            self.model_calls += 1
        start = time.perf_counter()
        classes = np.array([class_index], np.int32)
        capture = self.engine.capture(
            self.model_input(index), chosen, classes, self.output, score, self.explainer.target, self.explainer.feed
        )
        if reached_all:  # the largest pass there is (a backward pass through every layer): its working memory,
            give_back_freed_memory()  # freed now, goes back to the system rather than stay in malloc's arenas
        seconds = time.perf_counter() - start
        captures = {path: capture.at(path) for path in capture.activations}
        found = int(capture.class_index[0])
        with self._lock:
            if state is None or (state == self._state == self.engine.sync()):  # a warm-up keeps only fresh work
                self._keep(index, found, score, captures, capture, seconds if report_later else 0.0, reached_all)
        return captures

    def _keep(
        self,
        index: int,
        class_index: int,
        score: str,
        captures: Mapping[str, LayerCapture],
        any_capture: Any,
        seconds: float,
        reached_all: bool = False,
    ) -> _Passes:
        key = (index, class_index, score)
        earlier = self._passes.pop(key)  # taken out and put back: its size changes
        gradients = dict(earlier.gradients) if earlier else {}
        gradients.update({path: capture.gradients for path, capture in captures.items()})
        passes = _Passes(
            gradients,
            any_capture.scores,
            any_capture.probabilities,
            any_capture.class_index,
            seconds + (earlier.unreported_seconds if earlier else 0.0),
            reached_all or bool(earlier and earlier.reached_all),
        )
        for path, capture in captures.items():
            self._activations.put((index, path), capture.activations)
        self._passes.put(key, passes)
        self._probabilities[index] = any_capture.probabilities[0]
        return passes

    # -- warming up: while the first view is looked at, the pass that reaches every layer --------------------

    def warm_up(self, index: int, class_index: int, score: str) -> None:
        """In the background, run the pass that reaches every spatial layer for this image and class (unless
        it ran), so that the first switch to any layer finds it done. Only the newest request runs; a view
        that needs the pass meanwhile waits for it rather than run it twice; a pass that finds the model
        changed under it is thrown away."""
        if not self.warm_ups_enabled or self._closed:
            return
        key = (index, class_index, score)
        self._wanted = key
        passes = self._passes.get(key)
        if passes is not None and passes.reached_all:
            return
        layout = self.layout(index)
        if sum(_nbytes(layout.layers[p]) for p in layout.spatial_paths()) > self.capture_bytes:
            return  # a large input: its backward pass through every layer would cost more memory than it saves
        if self._worker is None:
            self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="camwidget-warm-up")
        self._hurry.clear()
        self._warming[key] = self._worker.submit(self._warm, key, self._state)

    def _warm(self, key: tuple[int, int, str], state: tuple[int, int]) -> None:
        try:
            # Start once the view has been looked at for a moment (or at once when a view needs this pass):
            # a cell that goes on to edit the model (pop, add) is done by then, and the model as it is then
            # is checked. A pass traced while a Sequential is being edited could build it under the edit.
            self._hurry.wait(_WARM_UP_DELAY)
            model = self.explainer.model
            if self._wanted != key or self._closed or state != self._state or self.engine.sync() != state:
                return
            if not getattr(model, "built", True):
                return
            passes = self._passes.get(key)
            if passes is not None and passes.reached_all:
                return
            index, class_index, score = key
            layout = self.layout(index)
            first = layout.layers[layout.spatial_paths()[0]]
            self.warm_up_passes += 1
            self._full_pass(index, first, class_index, score, deepest=True, state=state)
        except Exception:  # noqa: BLE001 - only a head start: the view that needs it computes and reports
            pass
        finally:
            self._warming.pop(key, None)

    def _wait_for_warm_up(self, key: tuple[int, int, str]) -> bool:
        """Wait for a warm-up of `key` that is under way; True if there was one."""
        future = self._warming.get(key)
        if future is None:
            return False
        self._hurry.set()
        try:
            future.result()
        except Exception:  # noqa: BLE001
            pass
        return True

    def wait_for_warm_ups(self) -> None:
        """Block until background work is done (tests and benchmarks use it)."""
        self._hurry.set()
        for future in list(self._warming.values()):
            try:
                future.result()
            except Exception:  # noqa: BLE001
                pass

    def _diagnose(self, capture: LayerCapture, raw: np.ndarray, info: LayerInfo) -> str | None:
        name = self.class_names[int(capture.class_index[0])]
        if self.per_position and capture.probabilities[0, int(capture.class_index[0])] == 0:
            return f"no pixel of this image is predicted as '{name}', so there is no region to explain"
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

    @property
    def cached_views(self) -> int:
        return len(self._views)

    def limit_caches(self, views: int, capture_bytes: int) -> None:
        """Bound the caches anew (emptied): `views` maps, `capture_bytes` of activations and gradients."""
        with self._lock:
            self.capture_bytes = capture_bytes
            self._views = LRU(views)
            self._activations = LRU(capture_bytes / 2, lambda a: a.nbytes)
            self._passes = LRU(capture_bytes / 2, lambda p: p.nbytes)

    def clear(self) -> None:
        self._drop_values()
        self._inputs.clear()
        self._display.clear()

    def close(self) -> None:
        """Let the model go, with everything computed and traced for it."""
        self._closed = True
        self._hurry.set()  # a warm-up waiting out its delay ends now
        if self._worker is not None:
            self._worker.shutdown(wait=True, cancel_futures=True)
            self._worker = None
        self.clear()
        self.explainer.close()
        gc.collect()  # the traced graphs hold reference cycles: free them now, then give their memory back
        give_back_freed_memory()


def _nbytes(info: LayerInfo) -> int:
    """Bytes of one image's activations and gradients at a layer (float32)."""
    return 2 * 4 * int(np.prod([d or 1 for d in info.shape]))


def _within(layers: list[LayerInfo], must: LayerInfo, budget: int) -> list[LayerInfo]:
    """`layers` (forward order) cut to what fits `budget` bytes of activations and gradients, keeping `must`
    and the layers nearest after it first."""
    size = _nbytes
    kept, used = [must], size(must)
    rest = sorted(
        (i for i in layers if i.path != must.path), key=lambda i: (i.order < must.order, abs(i.order - must.order))
    )
    for info in rest:
        if used + size(info) <= budget:
            kept.append(info)
            used += size(info)
    return sorted(kept, key=lambda i: i.order)


DISPLAY_SIDE = 1024  # the on-screen overlay's longer side, at most


def _check_max_pixels(max_pixels: Any) -> None:
    if isinstance(max_pixels, bool) or not isinstance(max_pixels, (int, np.integer)):
        raise TypeError(f"max_pixels must be an int (a picture's width × height), not {type(max_pixels).__name__}")
    if max_pixels < 1:
        raise CAMError(f"max_pixels must be positive, not {max_pixels}; the default is {MAX_PIXELS}")


def _check_max_side(max_side: Any) -> None:
    if isinstance(max_side, bool) or not isinstance(max_side, (int, np.integer)):
        raise TypeError(f"max_side must be an int (pixels on an image's longer side), not {type(max_side).__name__}")
    if max_side < 32:
        raise CAMError(f"max_side must be at least 32 pixels, not {max_side}; the default is 1024")


def _plain_preprocessing(preprocess: Any) -> preprocessing.Preprocessing:
    """For signals and clips: the user's function, else the values as given (no image family applies)."""
    if callable(preprocess):
        return preprocessing.Preprocessing(preprocess, f"your function {getattr(preprocess, '__name__', '')}".rstrip())
    if preprocess is None or (isinstance(preprocess, str) and preprocess.lower() == "none"):
        return preprocessing.Preprocessing(lambda x: x, "none (values as given)")
    raise TypeError(f"preprocess must be None, 'none' or a function, not {preprocess!r}")


def _signal_input(
    signal: np.ndarray, expected: tuple[int | None, ...], fn: Callable[[np.ndarray], np.ndarray]
) -> np.ndarray:
    """One signal (L, C) -> the (1, L, C) batch the model takes; its length and channels must fit."""
    length, channels = expected
    if length is not None and len(signal) != length:
        raise ImageError(f"the signal has length {len(signal)}, but the model takes {length}; cut or resample it first")
    if channels is not None and signal.shape[1] != channels:
        raise ImageError(f"the signal has {signal.shape[1]} channel(s), but the model takes {channels}")
    batch = np.asarray(fn(signal[None].astype(np.float32).copy()), np.float32)
    if batch.shape[:2] != (1, len(signal)) or not np.isfinite(batch).all():
        raise ImageError(
            f"preprocess returned shape {batch.shape} or non-finite values for a signal of shape {signal.shape}"
        )
    return batch


def _clip_input(
    frames: np.ndarray, expected: tuple[int | None, ...], max_side: int, fn: Callable[[np.ndarray], np.ndarray]
) -> tuple[np.ndarray, tuple[tuple[int, int], tuple[int, int]] | None]:
    """A clip's frames (T, H, W, 3) -> the (1, T, H, W, C) batch the model takes, each frame resized and
    preprocessed as a picture would be; the number of frames must fit."""
    count = expected[0]
    if count is not None and len(frames) != count:
        raise ImageError(f"the clip has {len(frames)} frames, but the model takes {count}; give {count} frames")
    prepared = [preprocessing.model_input(f, expected[1:], max_side, fn) for f in frames]
    return np.concatenate([p[0] for p in prepared])[None], prepared[0][1]
