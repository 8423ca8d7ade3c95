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
from dataclasses import dataclass
from typing import Any

import keras
import numpy as np

from camwidget import notes
from camwidget.cache import LRU, give_back_freed_memory
from camwidget.classes import resolve_class_names
from camwidget.engines import LayerCapture, LayerInfo, ModelLayout, is_per_position
from camwidget.errors import CAMError
from camwidget.explain import AUGMENTATIONS, Explainer, Options, Request
from camwidget.explorer.passes import Passes, capture_nbytes, diagnose, within_budget
from camwidget.explorer.pictures import OfPictures, Pictures, Resized, plain_preprocessing
from camwidget.explorer.warm_up import WarmUp
from camwidget.inputs import preprocess as preprocessing
from camwidget.inputs.images import (
    ImageLike,
    Images,
    ValueRange,
)
from camwidget.inputs.samples import screen_map
from camwidget.limits import MAX_PIXELS, MAX_SIDE
from camwidget.methods import normalize_maps
from camwidget.targets import check_class_index
from camwidget.targets import describe as describe_target


@dataclass(frozen=True)
class View:
    """One computed map and what the status line says about it."""

    cam: np.ndarray  # (h, w) float32 in [0, 1]: the map as drawn (a signal's (1, l); a clip frame's slice)
    layer: LayerInfo
    class_index: int
    method: str
    probabilities: np.ndarray  # (C,) the model's output for this image
    seconds: float  # how long computing it took (0 when it came from the cache)
    how: str  # "cached", or the pass it was made from (see status.Shown.how)
    diagnostic: str | None  # plain words when the map is blank
    raw: np.ndarray | None = None  # (h, w) the method's map before ReLU and scaling (None: aug_smooth's average)
    full: np.ndarray | None = None  # the whole map where it is not 2-D: (l,) of a signal, (d, h, w) of a clip


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
        *,
        request: Request | None = None,
        preprocess: Callable[[np.ndarray], np.ndarray] | str | None = None,
        class_names: Sequence[str] | Mapping[int, str] | None = None,
        max_side: int = MAX_SIDE,
        capture_bytes: int = 192 * 2**20,
        value_range: ValueRange | None = None,
        max_pixels: int = MAX_PIXELS,
        warm_up: bool = True,
        note: str | None = None,
    ) -> None:
        """The session of one explorer: the settings are CAMExplorer's (see its docstring); `request` what to
        explain, checked (:meth:`camwidget.explain.Request.of`: output, target, grid, leading_tokens, the feed
        of a model with several inputs; its options are the first view's); `note` what the model is (default:
        the note it carries, as the demo's random-weights stand-in does)."""
        self._lock = threading.RLock()  # the state and the caches, against the warm-up thread
        self._computing = threading.RLock()  # one view or probabilities at a time (explorer's worker, a cell)
        request = request or Request.of()
        self.model_note = notes.note_of(model, note)  # said in the status line and every figure's title
        if request.feed is not None and any(len(value) > 1 for value in request.feed.others):
            raise CAMError(
                "the explorer gives every image the same other inputs: give other_inputs one value each (not a batch)"
            )
        self.explainer = Explainer(model, request=request)
        self.capture_bytes = capture_bytes
        expected = self.explainer.expected_input_shape()
        kind = {2: "signal", 4: "volume"}.get(len(expected) if expected else 3, "image")  # what one input is
        steps = plain_preprocessing(preprocess) if kind == "signal" else preprocessing.resolve(model, preprocess)
        self.pictures = Pictures(
            images,
            kind,
            steps,
            lambda: self.explainer.expected_input_shape(),
            max_side,
            value_range,
            max_pixels,
        )
        # activations and gradients together stay within capture_bytes (they are the same size per layer)
        self._activations: LRU[tuple[int, str], np.ndarray] = LRU(capture_bytes / 2, lambda a: a.nbytes)
        self._passes: LRU[tuple[int, int, str], Passes] = LRU(capture_bytes / 2, lambda p: p.nbytes)
        self._views: LRU[tuple[Any, ...], View] = LRU(256)
        self._probabilities: dict[int, np.ndarray] = {}
        self._state = self.explainer.sync()
        first = self.layout(0)
        self.output, self.n_classes = self.explainer.output_and_classes(first)
        self.class_names = self._class_names(class_names)
        self._given_class_names = class_names
        self.scorecam_channels: int | None = 64  # Score-CAM runs one forward pass per channel: bound it
        self.model_calls = 0  # passes run, full or after-layer: lets tests see that a redraw ran no model
        self._warm_up = WarmUp(warm_up)
        self.warm_up_passes = 0  # passes run in the background

    def _class_names(self, given: Sequence[str] | Mapping[int, str] | None) -> list[str]:
        if self.explainer.explains_class:
            return resolve_class_names(given, self.n_classes)
        if given is not None and not (isinstance(given, Sequence) and len(given) == 1):
            raise CAMError("with target=, the class list is the target alone: give class_names=None or one name")
        return [str(given[0]) if given else f"target {describe_target(self.explainer.target)}"]

    # The pictures' parts, read through the session (the explorer, its status line and its comparisons do).
    kind = OfPictures[str]()
    preprocessing = OfPictures[preprocessing.Preprocessing]()
    max_side = OfPictures[int]()
    pixels = OfPictures[list[np.ndarray]]()
    names = OfPictures[list[str]]()
    notes = OfPictures[list[tuple[str, ...]]]()
    describe = OfPictures[Callable[[int], str]]()
    resized = OfPictures[dict[int, Resized]]()
    picture = OfPictures[Callable[..., np.ndarray]]()
    frames = OfPictures[Callable[[int], int]]()
    display_pixels = OfPictures[Callable[..., np.ndarray]]()
    model_input = OfPictures[Callable[[int], np.ndarray]]()

    @property
    def engine(self) -> Any:
        """The engine the explainer drives (for diagnostics; maps come only through :attr:`explainer`)."""
        return self.explainer.engine

    def add_image(self, image: ImageLike, name: str, value_range: ValueRange | None = None) -> int:
        """Add an image (a path, array, PIL image or file bytes); returns its index. Nothing is kept unless the
        picture can be read and the model takes it."""
        return self.pictures.add(image, name, value_range, self.layout_for_input)

    @property
    def per_position(self) -> bool:
        """The output scores classes per pixel (a segmentation): a class explains the pixels predicted as it,
        and its "probability" is the share of the pixels it covers."""
        layout = self.layout(0)
        return self.explainer.explains_class and is_per_position(
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
            if self.model_note == notes.STAND_IN:  # trained (or loaded) since: no longer only random weights
                self.model_note = notes.CHANGED_STAND_IN
        if structure_changed:
            self._restructured()
        return True

    def _restructured(self) -> None:
        """After layers were added or replaced: prepare the images again (the input size may have changed) and
        read the output's classes again (a new head may have another number of them)."""
        self.pictures.forget_inputs()
        self.output, n_classes = self.explainer.output_and_classes(self.layout(0))
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
        self.explainer.forget()
        self._drop_values()
        self._state = self.explainer.sync()
        self._restructured()

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
        else:
            class_index = check_class_index(class_index, self.n_classes)
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
                diagnostic=diagnose(capture, raw[0], info, self.class_names, self.per_position),
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
            how = "full pass" if earlier else passes.source(info.path)
            capture = LayerCapture(
                activations, passes.gradients[info.path], passes.scores, passes.probabilities, passes.class_index
            )
            return capture, how, earlier
        if activations is not None and passes is None:
            self.model_calls += 1
            capture = self.explainer.tail_capture(
                activations, info, class_index, self.output, self.model_input(index).shape[1:], score
            )
            if capture is not None:
                self._keep(index, class_index, score, {info.path: capture}, capture, 0.0)
                return capture, "after-layer pass", 0.0
        if passes is not None and self._warm_up.wait_for((index, class_index, score)) and not _again:
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
        chosen = within_budget([i for i in layers if i.order >= start], info, self.capture_bytes)
        if state is None:
            self.model_calls += 1
        start = time.perf_counter()
        classes = np.array([class_index], np.int32)
        capture = self.explainer.capture(self.model_input(index), chosen, classes, self.output, score=score)
        if reached_all:  # the largest pass there is (a backward pass through every layer): its working memory,
            give_back_freed_memory()  # freed now, goes back to the system rather than stay in malloc's arenas
        seconds = time.perf_counter() - start
        captures = {path: capture.at(path) for path in capture.activations}
        found = int(capture.class_index[0])
        with self._lock:
            if state is None or (state == self._state == self.explainer.sync()):  # a warm-up keeps only fresh work
                self._keep(
                    index,
                    found,
                    score,
                    captures,
                    capture,
                    seconds if report_later else 0.0,
                    reached_all,
                    state is not None,
                )
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
        warm_up: bool = False,
    ) -> Passes:
        key = (index, class_index, score)
        earlier = self._passes.pop(key)  # taken out and put back: its size changes
        gradients = dict(earlier.gradients) if earlier else {}
        gradients.update({path: capture.gradients for path, capture in captures.items()})
        passes = Passes(
            gradients,
            any_capture.scores,
            any_capture.probabilities,
            any_capture.class_index,
            seconds + (earlier.unreported_seconds if earlier else 0.0),
            reached_all or bool(earlier and earlier.reached_all),
            # the layers whose gradients this pass replaces come from it: from the warm-up only if it is one
            ((earlier.warmed if earlier else frozenset()) - frozenset(captures))
            | (frozenset(captures) if warm_up else frozenset()),
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
        key = (index, class_index, score)
        self._warm_up.want(key)
        passes = self._passes.get(key)
        if not self.warm_ups_enabled or (passes is not None and passes.reached_all):
            return
        layout = self.layout(index)
        if sum(capture_nbytes(layout.layers[p]) for p in layout.spatial_paths()) > self.capture_bytes:
            return  # a large input: its backward pass through every layer would cost more memory than it saves
        state = self._state
        self._warm_up.start(key, lambda: self._warm(key, state))

    def _warm(self, key: tuple[int, int, str], state: tuple[int, int]) -> None:
        """The warm-up pass for `key`, if the model is still as it was when it was asked for."""
        model = self.explainer.model
        if state != self._state or self.explainer.sync() != state or not getattr(model, "built", True):
            return
        passes = self._passes.get(key)
        if passes is not None and passes.reached_all:
            return
        index, class_index, score = key
        layout = self.layout(index)
        first = layout.layers[layout.spatial_paths()[0]]
        self.warm_up_passes += 1
        self._full_pass(index, first, class_index, score, deepest=True, state=state)

    @property
    def warm_ups_enabled(self) -> bool:
        return self._warm_up.enabled

    @warm_ups_enabled.setter
    def warm_ups_enabled(self, enabled: bool) -> None:
        self._warm_up.enabled = enabled

    def wait_for_warm_ups(self) -> None:
        """Block until background work is done (tests and benchmarks use it)."""
        self._warm_up.wait_for_all()

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
        self.pictures.clear()

    def close(self) -> None:
        """Let the model go, with everything computed and traced for it."""
        self._warm_up.close()
        self.clear()
        self.explainer.close()
        gc.collect()  # the traced graphs hold reference cycles: free them now, then give their memory back
        give_back_freed_memory()
