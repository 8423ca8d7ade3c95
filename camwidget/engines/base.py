"""The engine interface: what every engine (TensorFlow, JAX/torch) does for one model, and what they share.

An engine holds one model weakly, learns its layout by a dry run (one per input shape), runs compiled passes
that capture activations A and gradients dy_c/dA at chosen layers, and looks at the model before each use
(the model-change watch, :mod:`camwidget.engines.model_watch`), dropping every traced pass when its structure
changed. :class:`Engine` keeps the caches and the checks; the passes are each engine's own
(:class:`camwidget.engines.tensorflow.TensorFlowEngine`, :class:`camwidget.engines.portable.PortableEngine`).
"""

from __future__ import annotations

import abc
import threading
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import keras
import numpy as np

from camwidget import progress
from camwidget.cache import LRU
from camwidget.engines import tail
from camwidget.engines.layout import LayerInfo, ModelLayout, model_input_shape
from camwidget.engines.model_watch import ModelWatch, structure_signature
from camwidget.engines.pass_fields import PerturbedCopies, Scoring
from camwidget.engines.scores import num_classes
from camwidget.errors import CAMError, ImageError, quoted
from camwidget.inputs.feed import Feed

SCORE_BATCH = 8  # masked inputs per forward pass: fixed, so the last, padded batch does not retrace; small, so
# that a superseded Score-CAM stops soon (at its next batch) and progress is fine-grained; CPU throughput is the
# same from 8 to 32 (VGG16: 3.9-4.0 s for 64 inputs)

Reduce = Callable[[Any, Any, Any], Any]  # (LayerInfo or None for the input, A or x, G or dy/dx) -> a tensor
NO_FUNCTION = object()  # cached "this model has no such pass" (no tail), so it is not looked for again


@dataclass
class LayerCapture:
    """What one pass yields for N images at one layer."""

    activations: np.ndarray  # (N, h, w, K) A
    gradients: np.ndarray  # (N, h, w, K) d y_c / d A, y_c the differentiated class score
    scores: np.ndarray  # (N, C) the scores differentiated (pre-softmax logits under score="auto")
    probabilities: np.ndarray  # (N, C) the model's own output, for display
    class_index: np.ndarray  # (N,) the class each image was explained for


@dataclass
class Capture:
    """One pass at several layers: the backward pass that reaches the deepest of them gives the gradients
    at all the others on its way, at no extra cost."""

    activations: dict[str, np.ndarray]  # path -> (N, h, w, K)
    gradients: dict[str, np.ndarray]  # path -> (N, h, w, K)
    scores: np.ndarray
    probabilities: np.ndarray
    class_index: np.ndarray

    def at(self, path: str) -> LayerCapture:
        """What this pass yields at one of its layers."""
        return LayerCapture(
            self.activations[path], self.gradients[path], self.scores, self.probabilities, self.class_index
        )

    @property
    def nbytes(self) -> int:
        """The bytes its activations and gradients take."""
        return sum(a.nbytes for a in self.activations.values()) + sum(g.nbytes for g in self.gradients.values())


class ModelChanged(Exception):
    """The model's structure changed while a pass set up for its old structure ran: look again and rerun."""


@dataclass
class MapsCapture:
    """What a pass that computes the maps itself yields (see ``PortableEngine.capture_maps``)."""

    maps: np.ndarray  # (N, h, w) raw maps: the method's per-channel terms summed over k
    probabilities: np.ndarray  # (N, C) the model's own output
    class_index: np.ndarray  # (N,) the class each image was explained for
    input_finite: bool = True  # whether every value of the batch was finite (checked inside the pass)


# Compiled passes kept per model: each holds a traced graph of the whole model (about 15 MB for MobileNetV2),
# so they are bounded; the least recently used is dropped and traced again if needed.
MAX_COMPILED = 16


class Engine(abc.ABC):
    """Compiled passes for one model, and what its dry runs learned. Never changes the model.

    Holds the model weakly: whoever keeps a model for later (an Explainer, the explorer) holds it strongly.
    Every compiled pass is traced once, for an explicit input signature (any batch size), and kept as a
    concrete function in a bounded cache; a change of the model's structure (see :mod:`camwidget.engines.model_watch`)
    drops them all.

    Subclasses implement the passes: :meth:`capture`, :meth:`recapture`, :meth:`class_probabilities`,
    :meth:`perturbed_scores`, :meth:`guided_gradients` and the dry run :meth:`_describe`; an engine that can run a
    method's formula inside its pass sets ``maps_in_pass`` and implements ``capture_maps``.
    """

    def __init__(self, model: keras.Model) -> None:
        if not isinstance(model, keras.Model):
            raise TypeError(
                f"model must be a Keras 3 model (keras.Model, Sequential or a subclass), not {type(model).__name__}"
            )
        self._model = weakref.ref(model)
        self._layouts: LRU[tuple[int, ...], ModelLayout] = LRU(8)
        self._functions: LRU[tuple[Any, ...], Any] = LRU(MAX_COMPILED)
        self._watch: ModelWatch | None = None
        self._structure_seen = 0
        self._lock = threading.RLock()
        self.trace_count = 0
        # Whether every pass reads one snapshot of the weights that nothing can change while it runs (JAX's
        # immutable arrays): then a pass never mixes old and new weights, and need not be checked after.
        self.snapshot_passes = False
        # Whether the engine can run a gradient method's formula inside its pass (capture_maps: JAX, torch),
        # so that only the maps leave the device. TensorFlow's engine hands back A and G, as the explorer needs.
        self.maps_in_pass = False

    @property
    def model(self) -> keras.Model:
        """The model, while it exists (a CAMError after it is freed)."""
        model = self._model()
        if model is None:
            raise CAMError("the model this explainer was made for no longer exists")
        return model

    # -- the model as it is now ----------------------------------------------------------------------------

    def sync(self) -> tuple[int, int]:
        """Look at the model now: a changed structure drops every traced pass and dry run. Returns a token
        (structure version, values version) that changes whenever cached values must not be reused."""
        with self._lock:
            if self._watch is None:
                self._watch = ModelWatch(self.model) if self.model.built else None
                if self._watch is None:
                    return (0, 0)
            structure, values = self._watch.check(self.model)
            if structure != self._structure_seen:
                self._structure_seen = structure
                self._layouts.clear()
                self._functions.clear()
            return structure, values

    def structure_seen(self) -> int | None:
        """The structure version the last :meth:`sync` saw; None before the first one, for a model not built,
        and after :meth:`forget` (each of which the next sync must see first)."""
        with self._lock:
            if self._watch is None or self._watch.invalidated:
                return None
            return self._structure_seen

    def forget(self) -> None:
        """Drop every traced pass and dry run, and treat the model as changed (refresh, close)."""
        with self._lock:
            self._layouts.clear()
            self._functions.clear()
            if self._watch is not None:
                self._watch.invalidate()

    @property
    def compiled_count(self) -> int:
        """How many compiled passes are kept."""
        return len(self._functions)

    # -- shapes and layout ---------------------------------------------------------------------------------

    def expected_input_shape(self, feed: Feed | None = None) -> tuple[int | None, ...] | None:
        """What one input item is, (H, W, C) for images ((L, C) signals, (D, H, W, C) volumes), None entries
        where any size goes; None if the model does not say."""
        return model_input_shape(self.model, feed)

    def layout(self, image_shape: Sequence[int] | None = None, feed: Feed | None = None) -> ModelLayout:
        """The dry-run description of the model for images of `image_shape` (H, W, C)."""
        shape = self._check_image_shape(image_shape, feed)
        key = (shape, None if feed is None else feed.signature)
        with self._lock:
            found = self._layouts.get(key)
            if found is None:
                model = self.model
                if (
                    not model.built and feed is None
                ):  # a Sequential without an Input that was never called: build it as predict would
                    model(np.zeros((1, *shape), np.float32), training=False)
                before = structure_signature(model)
                found = self._describe(model, shape, feed)
                if structure_signature(model) == before:  # not kept if the model changed while it was read
                    self._layouts.put(key, found)
            return found

    @abc.abstractmethod
    def _describe(self, model: keras.Model, shape: tuple[int, ...], feed: Feed | None) -> ModelLayout:
        """The engine's dry run: the layout of `model` for inputs of `shape`."""

    def _check_image_shape(self, image_shape: Sequence[int] | None, feed: Feed | None = None) -> tuple[int, ...]:
        expected = self.expected_input_shape(feed)
        if image_shape is None:
            if expected is None or any(d is None for d in expected):
                raise CAMError(
                    "the model's input size is not fixed, so its layers' shapes depend on the image: "
                    "pass sample= (one image or a batch, as the model takes it)"
                )
            return tuple(int(d) for d in expected)
        shape = tuple(int(d) for d in image_shape)
        if expected is None:
            return shape
        want = "(" + ", ".join("any" if d is None else str(d) for d in expected) + ")"
        channels = expected[-1] if expected else None
        if len(shape) == 3 == len(expected) and channels is not None and shape[-1] != channels == shape[0]:
            raise ImageError(
                f"images have shape {shape} per image: channels first, but the model takes channels last {want}; "
                "transpose them first: np.transpose(images, (0, 2, 3, 1))"
            )
        if len(shape) != len(expected):
            raise ImageError(
                f"images have shape {shape} per image, but the model takes {want}"
                + (" (one per item; a batch has one more axis in front)" if len(shape) == len(expected) + 1 else "")
            )
        axes = {2: ("length", "channels"), 4: ("depth", "height", "width", "channels")}.get(
            len(shape), ("height", "width", "channels")
        )
        for got, need, axis in zip(shape, expected, axes):
            if need is not None and got != need:
                extra = (
                    "; resize the images first (CAMExplorer resizes for you)"
                    if axis != "channels"
                    else "; convert them (grayscale / RGB / RGBA) to match"
                )
                raise ImageError(f"images have {axis} {got}, but the model takes {need}: shape {want}{extra}")
        return shape

    def output_index(self, layout: ModelLayout, output: str | int | None, classes: bool = True) -> int:
        """The index of the output `output` names; with `classes`, it must give one score per class."""
        names = layout.output_names
        if output is None:
            if len(names) > 1:
                raise CAMError(
                    f"the model has {len(names)} outputs ({quoted(names)}); pass output= one of these names or an index"
                )
            index = 0
        elif isinstance(output, str):
            if output not in names:
                raise CAMError(f"output {output!r} not found; the model's outputs are {quoted(names)}")
            index = names.index(output)
        elif isinstance(output, (int, np.integer)) and not isinstance(output, bool):
            if not 0 <= output < len(names):
                raise CAMError(f"output index {output} is out of range: the model has {len(names)} output(s)")
            index = int(output)
        else:
            raise TypeError(f"output must be an output name or index, not {type(output).__name__}")
        if classes:
            num_classes(layout, index)  # says clearly when this output is not a class-score vector
        return index

    # -- the passes: each engine's own ---------------------------------------------------------------------

    def capture(
        self,
        x: np.ndarray,
        infos: Sequence[LayerInfo],
        classes: np.ndarray,
        output: int,
        score: str,
        target: Any = None,
        feed: Feed | None = None,
    ) -> Capture:
        """One pass over the whole model: A and dy_c/dA at each layer of `infos`, and the scores.

        Args:
            x: the images (N, H, W, C) (or whatever one input item is), float32.
            infos: the layers, from :meth:`layout`.
            classes: (N,) int32, -1 for each image's top class (see :func:`camwidget.engines.scores.class_vector`).
            output: the output's index (:meth:`output_index`).
            score: "auto" (the logits) or "probability".
            target: None, or a target of :mod:`camwidget.targets`: y = target(output) instead of a class's
                score; the scores and probabilities are then y itself, (N, 1).
            feed: the model's other inputs, for a model with several.

        Returns:
            The :class:`Capture`.

        Raises:
            CAMError: the output does not depend on a layer, a layer ran more than once, or the target gives
                no gradient.
        """
        return self._capture(x, infos, Scoring(classes, output, score, target, feed))

    @abc.abstractmethod
    def _capture(self, x: np.ndarray, infos: Sequence[LayerInfo], spec: Scoring) -> Capture:
        """:meth:`capture`, each engine's own."""

    def recapture(
        self,
        activations: np.ndarray,
        info: LayerInfo,
        classes: np.ndarray,
        output: int,
        score: str,
        feed: Feed | None = None,
        image_shape: tuple[int, ...] | None = None,
    ) -> LayerCapture | None:
        """The tail pass: :meth:`capture` at one layer from its cached activations, running only the layers after it.

        Args:
            activations: A at the layer (N, h, w, K), from an earlier capture.
            info: the layer.
            classes, output, score: as :meth:`capture`.
            feed: the other inputs; with one, None (another input may join after the layer).
            image_shape: one input's shape, for the engines that read the logits' place from the layout.

        Returns:
            The :class:`LayerCapture`, or None where the model's structure does not allow a tail pass (then use
            :meth:`capture`).
        """
        return self._recapture(activations, info, Scoring(classes, output, score, feed=feed), image_shape)

    @abc.abstractmethod
    def _recapture(
        self, activations: np.ndarray, info: LayerInfo, spec: Scoring, image_shape: tuple[int, ...] | None
    ) -> LayerCapture | None:
        """:meth:`recapture`, each engine's own."""

    def tail_hessian_vector(
        self, activations: np.ndarray, info: LayerInfo, classes: np.ndarray, output: int, score: str
    ) -> tuple[np.ndarray, np.ndarray] | None:
        """Second order at a layer, from its activations, running only the layers after it (Shapley-CAM).

        Args:
            activations: A at the layer (N, *positions, K), from an earlier capture.
            info: the layer.
            classes: (N,) int32, each image's class (resolved, not -1).
            output, score: as :meth:`capture`.

        Returns:
            (G, HA): G = dy_c/dA and the Hessian-vector product HA = d/dA (G . A), A held fixed in the product,
            each (N, *positions, K) float32; None where the engine or the model's structure does not allow a tail
            pass (this engine: only TensorFlow's does).
        """
        return None

    def capture_with_input_gradient(
        self, x: np.ndarray, infos: Sequence[LayerInfo], reduce: Reduce, spec: Scoring
    ) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray, np.ndarray] | None:
        """One pass with the input watched too, whose layers' A and G are reduced inside it (FullGrad).

        Args:
            x: the images (N, H, W, C).
            infos: the layers.
            reduce: (info, A, G) -> what leaves the pass of each layer, and (None, x, dy_c/dx) of the input,
                in keras.ops (float32 tensors in, a tensor out).
            spec: what the pass scores.

        Returns:
            ({path: its reduction}, the input's, probabilities (N, C), class_index (N,)), or None where the
            engine does not make this pass (only TensorFlow's does).
        """
        return None

    @abc.abstractmethod
    def class_probabilities(
        self, x: np.ndarray, output: int, feed: Feed | None = None, image: int | None = None
    ) -> np.ndarray:
        """(M, C) class probabilities of many inputs, in fixed-size batches (:data:`SCORE_BATCH`, the last padded).

        Args:
            x: the inputs (M, H, W, C).
            output: the output's index.
            feed: the other inputs; with `image`, every input is a variant of image `image`; without, each
                input goes with its own row of the other inputs (one shared row: with that).
            image: see `feed`.

        Returns:
            The output's own softmax or sigmoid, or a softmax over it where it has none (see
            :func:`camwidget.engines.scores.probabilities`).
        """

    def perturbed_scores(
        self,
        images: np.ndarray,
        baselines: np.ndarray,
        ranks: np.ndarray,
        rows: np.ndarray,
        counts: np.ndarray,
        classes: np.ndarray,
        output: int,
        insert: bool,
        batch: int = 32,
        feed: Feed | None = None,
    ) -> np.ndarray:
        """Class probabilities of perturbed copies (the deletion and insertion metrics).

        Copy k is image rows[k] with its counts[k] pixels of lowest rank replaced by its baseline (deletion), or
        the only ones kept from it, the rest baseline (insertion), scored for classes[k]. The copies are made in
        the pass, `batch` per call (the last padded), from images, baselines (N, H, W, C) and ranks (N, H, W).

        Returns:
            (K,) float32: the probability of classes[k] for copy k.
        """
        copies = PerturbedCopies(images, baselines, ranks, rows, counts, classes, output, insert, batch, feed)
        return self._perturbed_scores(copies)

    @abc.abstractmethod
    def _perturbed_scores(self, copies: PerturbedCopies) -> np.ndarray:
        """:meth:`perturbed_scores`, each engine's own."""

    @abc.abstractmethod
    def guided_gradients(
        self, x: np.ndarray, classes: np.ndarray, output: int, score: str, feed: Feed | None = None
    ) -> np.ndarray:
        """Guided backpropagation: d y_c / d input with guided ReLU gradients, (N, H, W, C).

        Raises:
            CAMError: the engine cannot override the ReLU's gradient (JAX, torch).
        """

    def gap_dense_kernel(self, info: LayerInfo, output: int) -> np.ndarray:
        """The (K, C) kernel CAM (Zhou et al. 2016) weights layer `info`'s channels with: see
        :func:`camwidget.engines.tail.gap_dense_kernel`."""
        return tail.gap_dense_kernel(self.model, info)

    # -- the compiled passes' cache -------------------------------------------------------------------------

    def _compiled(self, key: tuple[Any, ...], build: Callable[[], Any]) -> Any:
        """The concrete function for `key`, traced once by `build` and kept (bounded). Calling a concrete
        function never retraces, so no retracing warning can come from here."""
        with self._lock:
            found = self._functions.get(key)
            if found is None:
                progress.note("tracing the pass (once for this layer set and input size)")
                found = build() or NO_FUNCTION
                self._functions.put(key, found)
            return None if found is NO_FUNCTION else found


def row_chunks(feed: Feed | None, n: int, image: int | None = None) -> Callable[[int], list[np.ndarray]]:
    """The other inputs of class_probabilities' fixed-size chunks (SCORE_BATCH, the last padded) of `n` inputs:
    start -> one array per other input. Variants of image `image`, or shared rows: the same for every chunk;
    else (different images, one row each) the rows of the chunk's inputs, padded as the inputs are."""
    if feed is None:
        return lambda start: []
    if image is not None or all(len(value) == 1 for value in feed.others):
        same = feed.rows(SCORE_BATCH, image)
        return lambda start: same
    full = feed.rows(n)  # one row per input: an error that says so where the count is not n

    def chunk(start: int) -> list[np.ndarray]:
        parts = [rows[start : start + SCORE_BATCH] for rows in full]
        return [np.concatenate([p, np.zeros((SCORE_BATCH - len(p), *p.shape[1:]), p.dtype)]) for p in parts]

    return chunk
