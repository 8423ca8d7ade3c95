"""Compiled passes over a model: activations, gradients and class scores at one or several layers.

The pass runs the model once inside a traced function with the chosen layers reporting their outputs to a
``GradientTape`` (see :mod:`camwidget.engines.adapter`), so Grad-CAM costs about one forward pass, and one backward
pass gives the gradients at every chosen layer. Each pass is traced once, for any batch size; class indices
are tensors, so a new class never retraces.
"""

from __future__ import annotations

import functools
import threading
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import keras
import numpy as np

from camwidget import keras_private, progress, targets
from camwidget.cache import LRU
from camwidget.engines import adapter, backends
from camwidget.engines.adapter import LayerInfo, ModelLayout
from camwidget.engines.model_watch import ModelWatch, structure_signature
from camwidget.errors import CAMError, ImageError, quoted
from camwidget.inputs.feed import Feed
from camwidget.tensorflow_lazy import tf

SCORES = ("auto", "probability")
_GUIDED_RELU, _GUIDED_RELU6 = "CamwidgetGuidedRelu", "CamwidgetGuidedRelu6"
_SCORE_BATCH = 8  # masked inputs per forward pass: fixed, so the last, padded batch does not retrace; small, so
# that a superseded Score-CAM stops soon (at its next batch) and progress is fine-grained; CPU throughput is the
# same from 8 to 32 (VGG16: 3.9-4.0 s for 64 inputs)


@functools.cache
def _register_guided_gradients() -> None:
    """Guided backpropagation's ReLU gradient: pass a gradient only where it and the ReLU's output are
    positive. Registered under new names and used through gradient_override_map on a traced copy of the
    forward pass, so the model and TensorFlow's own Relu gradient are untouched. Registered on first use,
    so that importing camwidget does not import TensorFlow."""

    def guided(op: tf.Operation, grad: tf.Tensor, upper: float | None) -> tf.Tensor:
        y = op.outputs[0]
        keep = (grad > 0) & (y > 0) if upper is None else (grad > 0) & (y > 0) & (y < upper)
        return tf.where(keep, grad, tf.zeros_like(grad))

    for name, upper in ((_GUIDED_RELU, None), (_GUIDED_RELU6, 6.0)):
        try:
            tf.RegisterGradient(name)(lambda op, grad, upper=upper: guided(op, grad, upper))
        except KeyError:  # already registered (module reloaded)
            pass


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
        return LayerCapture(
            self.activations[path], self.gradients[path], self.scores, self.probabilities, self.class_index
        )

    @property
    def nbytes(self) -> int:
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


class CAMEngine:
    """Compiled passes for one model, and what its dry runs learned. Never changes the model.

    Holds the model weakly: whoever keeps a model for later (an Explainer, the explorer) holds it strongly.
    Every compiled pass is traced once, for an explicit input signature (any batch size), and kept as a
    concrete function in a bounded cache; a change of the model's structure (see :mod:`camwidget.engines.model_watch`)
    drops them all.
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
        return len(self._functions)

    # -- shapes and layout ---------------------------------------------------------------------------------

    def expected_input_shape(self, feed: Feed | None = None) -> tuple[int | None, ...] | None:
        """What one input item is, (H, W, C) for images ((L, C) signals, (D, H, W, C) volumes), None entries
        where any size goes; None if the model does not say."""
        return adapter.model_input_shape(self.model, feed)

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

    def _describe(self, model: keras.Model, shape: tuple[int, ...], feed: Feed | None) -> ModelLayout:
        return adapter.describe_model(model, shape, feed)

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

    # -- the passes ----------------------------------------------------------------------------------------
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
        """One pass over the whole model: A and dy_c/dA at each layer of `infos`, and the scores, for images
        `x` (N, H, W, C). The backward pass reaches the deepest layer; the others cost nothing more.
        With a `target` (see :mod:`camwidget.targets`), y = target(output) instead of a class's score; the
        scores and probabilities are then y itself, (N, 1)."""
        infos = sorted(infos, key=lambda i: i.order)
        key = ("capture", tuple(i.path for i in infos), output, score, x.shape[1:], target, _signature(feed))
        fn = self._compiled(key, lambda: self._build_capture(infos, output, score, x.shape[1:], target, feed))
        a, g, s, p, c = fn(
            tf.convert_to_tensor(x, tf.float32), tf.convert_to_tensor(classes, tf.int32), *_rows(feed, len(x))
        )
        paths = [i.path for i in infos]
        return Capture(
            dict(zip(paths, (t.numpy() for t in a))),
            dict(zip(paths, (t.numpy() for t in g))),
            s.numpy(),
            p.numpy(),
            c.numpy(),
        )

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
        """The same as :meth:`capture` at one layer from its cached activations, running only the layers after
        it; None where the model's structure does not allow that (then use :meth:`capture`), and for a model
        with several inputs (another input may join after the layer). `image_shape`: one input's shape, for
        the engines that read the logits' place from the dry run's layout."""
        if feed is not None:
            return None
        key = ("tail", info.path, output, score, activations.shape[1:])
        fn = self._compiled(key, lambda: self._build_tail(info, output, score, activations.shape[1:]))
        if fn is None:
            return None
        g, s, p, c = fn(tf.convert_to_tensor(activations, tf.float32), tf.convert_to_tensor(classes, tf.int32))
        return LayerCapture(activations, g.numpy(), s.numpy(), p.numpy(), c.numpy())

    # -- the narrow interface for methods that run the model again (Score-CAM, Guided Grad-CAM, CAM) --------

    def class_probabilities(
        self, x: np.ndarray, output: int, feed: Feed | None = None, image: int | None = None
    ) -> np.ndarray:
        """(M, C) class probabilities of many inputs, in fixed-size batches: the output's own softmax or
        sigmoid, or a softmax over it where it has none. With a feed, they are all variants of image `image`, or,
        with `image` None, each input goes with its own row of the other inputs (one shared row: with that)."""
        key = ("probabilities", output, x.shape[1:], _signature(feed))
        fn = self._compiled(key, lambda: self._build_probabilities(output, x.shape[1:], feed))
        others_at = row_chunks(feed, len(x), image)
        results = []
        for start in range(0, len(x), _SCORE_BATCH):
            progress.step(start, len(x), "masked inputs")
            chunk = x[start : start + _SCORE_BATCH]
            padded = np.concatenate([chunk, np.zeros((_SCORE_BATCH - len(chunk), *chunk.shape[1:]), chunk.dtype)])
            others = [tf.convert_to_tensor(r) for r in others_at(start)]
            results.append(fn(tf.convert_to_tensor(padded, tf.float32), *others).numpy()[: len(chunk)])
        return np.concatenate(results)

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
        """Class probabilities of perturbed copies: copy k is image rows[k] with its counts[k] pixels of lowest
        rank replaced by its baseline (deletion), or the only ones kept from it, the rest baseline (insertion),
        scored for classes[k]. The copies are made in the graph, `batch` per call (the last padded), from the
        images, baselines (N, H, W, C) and ranks (N, H, W) given once as tensors, so none is made in NumPy.
        With a feed, copy k goes with image rows[k]'s other inputs."""
        shape = tuple(images.shape[1:])
        key = ("perturbed", output, shape, batch, _signature(feed))
        fn = self._compiled(key, lambda: self._build_perturbed(output, shape, batch, feed))
        others = _rows(feed, len(images))  # one row per image, picked by `rows` in the graph
        scores = np.empty(len(rows), np.float32)
        flag = tf.constant(insert)
        for start in range(0, len(rows), batch):
            progress.step(start, len(rows), "perturbed copies")
            chunk = slice(start, start + batch)
            n = len(rows[chunk])

            def padded(values: np.ndarray) -> tf.Tensor:
                out = np.zeros(batch, np.int32)
                out[:n] = values[chunk]
                return tf.convert_to_tensor(out)

            result = fn(images, baselines, ranks, padded(rows), padded(counts), padded(classes), flag, *others)
            scores[start : start + n] = result.numpy()[:n]
        return scores

    def guided_gradients(
        self, x: np.ndarray, classes: np.ndarray, output: int, score: str, feed: Feed | None = None
    ) -> np.ndarray:
        """Guided backpropagation: d y_c / d input with guided ReLU gradients, (N, H, W, C)."""
        key = ("guided", output, score, x.shape[1:], _signature(feed))
        fn = self._compiled(key, lambda: self._build_guided(output, score, x.shape[1:], feed))
        return fn(
            tf.convert_to_tensor(x, tf.float32), tf.convert_to_tensor(classes, tf.int32), *_rows(feed, len(x))
        ).numpy()

    def gap_dense_kernel(self, info: LayerInfo, output: int) -> np.ndarray:
        """The (K, C) kernel of the Dense layer that follows `info` through GlobalAveragePooling2D alone, as
        CAM (Zhou et al. 2016) requires; a CAMError saying why when the model is not of that shape."""
        after = keras_private.layers_after(self.model, info.path, info.shape)
        if after is None:
            raise CAMError(
                f"CAM needs to read the layers after {info.path!r}, and this model's structure (subclassed, "
                "or a layer used twice) does not show them; use 'gradcam', which equals CAM where CAM applies"
            )
        L = keras.layers
        dense_at = [i for i, layer in enumerate(after) if isinstance(layer, L.Dense)]
        fits = (
            len(dense_at) == 1
            and isinstance(after[0], (L.GlobalAveragePooling1D, L.GlobalAveragePooling2D, L.GlobalAveragePooling3D))
            and all(isinstance(layer, (L.Dropout, L.Flatten)) for layer in after[1 : dense_at[0]])
            and all(isinstance(layer, (L.Activation, L.Softmax)) for layer in after[dense_at[0] + 1 :])
        )
        if not fits:
            kinds = ", ".join(layer.name for layer in after) or "no layers"
            raise CAMError(
                f"CAM (Zhou et al. 2016) needs layer {info.path!r} to be followed only by "
                f"GlobalAveragePooling2D and one Dense layer, so that each class score is a weighted sum of "
                f"the channel means; after it come: {kinds}. Use 'gradcam': it equals CAM on models "
                "where CAM applies, and works on every model."
            )
        dense = after[dense_at[0]]
        return np.asarray(keras.ops.convert_to_numpy(dense.kernel), np.float32).reshape(dense.kernel.shape[0], -1)

    # -- building the compiled passes ----------------------------------------------------------------------

    def _compiled(self, key: tuple[Any, ...], build: Callable[[], Any]) -> Any:
        """The concrete function for `key`, traced once by `build` and kept (bounded). Calling a concrete
        function never retraces, so no retracing warning can come from here."""
        with self._lock:
            found = self._functions.get(key)
            if found is None:
                progress.note("tracing the pass (once for this layer set and input size)")
                found = build() or _NO_FUNCTION
                self._functions.put(key, found)
            return None if found is _NO_FUNCTION else found

    def _trace(self, fn: Callable[..., Any], *specs: tf.TensorSpec) -> Any:
        self.trace_count += 1
        try:
            return tf.function(fn).get_concrete_function(*specs)
        except Exception as exc:
            if isinstance(exc.__context__, CAMError):  # ours, raised while tracing, wrapped by AutoGraph
                raise exc.__context__ from None
            raise

    def _build_capture(
        self,
        infos: Sequence[LayerInfo],
        output: int,
        score: str,
        input_shape: tuple[int, ...],
        target: Any = None,
        feed: Feed | None = None,
    ) -> Any:
        model_ref, layers = self._model, {info.path: info.layer for info in infos}

        def full_pass(x: tf.Tensor, classes: tf.Tensor, *others: tf.Tensor) -> tuple[Any, ...]:
            captured: dict[str, list[tf.Tensor]] = {path: [] for path in layers}

            def on_output(path: str, out: tf.Tensor) -> None:
                tape.watch(out)
                captured[path].append(out)

            with tf.GradientTape(watch_accessed_variables=False) as tape:
                with adapter.capturing(layers, on_output):
                    outputs = adapter.call_model(model_ref(), x, feed, others)
                scores, probs, classes, chosen = _scores(outputs[output], score, classes, target, len(input_shape))
            for path, seen in captured.items():
                if len(seen) != 1 or not isinstance(seen[0], tf.Tensor):
                    raise CAMError(
                        f"layer {path!r} reported {len(seen)} outputs in one forward pass where the dry run saw "
                        "one, so its map cannot be told apart safely (is the layer called from another thread "
                        "or in a loop inside the model?); choose another layer"
                    )
            activations = [captured[path][0] for path in layers]
            grads = tape.gradient(chosen, activations)
            for path, g in zip(layers, grads):
                if g is None and target is not None:
                    raise CAMError(
                        f"target {target!r} gives no gradient at layer {path!r}: it must be differentiable in the "
                        "model's output (no argmax, rounding or cast to int), and depend on this layer"
                    )
                if g is None:
                    raise CAMError(f"output {output} does not depend on layer {path!r}; choose another layer")
            return [_f32(a) for a in activations], [_f32(g) for g in grads], scores, probs, classes

        return self._trace(full_pass, _spec(input_shape), tf.TensorSpec((None,), tf.int32), *_specs(feed))

    def _build_tail(self, info: LayerInfo, output: int, score: str, shape: tuple[int, ...]) -> Any:
        tail = keras_private.tail_function(self.model, info.path, output)
        if tail is None:
            return None
        rank = len(self.expected_input_shape() or (None, None, None))

        def tail_pass(activations: tf.Tensor, classes: tf.Tensor) -> tuple[tf.Tensor, ...]:
            a = tf.cast(activations, info.layer.compute_dtype)
            with tf.GradientTape(watch_accessed_variables=False) as tape:
                tape.watch(a)
                scores, probs, classes, chosen = _class_scores(tail(a), score, classes, rank)
            return _f32(tape.gradient(chosen, a)), scores, probs, classes

        try:
            return self._trace(tail_pass, _spec(shape), tf.TensorSpec((None,), tf.int32))
        except CAMError:
            raise
        except Exception:  # Keras's graph did not run as read: fall back to full passes
            return None

    def _build_probabilities(self, output: int, input_shape: tuple[int, ...], feed: Feed | None = None) -> Any:
        model_ref = self._model

        def probabilities(x: tf.Tensor, *others: tf.Tensor) -> tf.Tensor:
            y = adapter.call_model(model_ref(), x, feed, others)[output]
            activation, _ = adapter.final_activation(y)
            _, probs, _, _ = _class_scores(y, "probability", tf.fill([tf.shape(y)[0]], -1), len(input_shape))
            return probs if activation else tf.nn.softmax(probs, axis=-1)

        return self._trace(probabilities, _spec(input_shape), *_specs(feed))

    def _build_perturbed(self, output: int, shape: tuple[int, ...], batch: int, feed: Feed | None = None) -> Any:
        model_ref = self._model

        def perturbed(
            images: tf.Tensor,
            baselines: tf.Tensor,
            ranks: tf.Tensor,
            rows: tf.Tensor,
            counts: tf.Tensor,
            classes: tf.Tensor,
            insert: tf.Tensor,
            *others: tf.Tensor,
        ) -> tf.Tensor:
            chosen = tf.gather(ranks, rows) < counts[:, None, None]  # (B, H, W): the pixels moved at each copy
            keep_image = tf.math.logical_xor(chosen, tf.logical_not(insert))  # deletion: not chosen; insertion: chosen
            image, baseline = tf.gather(images, rows), tf.gather(baselines, rows)
            x = baseline + tf.cast(keep_image, tf.float32)[..., None] * (image - baseline)
            y = adapter.call_model(model_ref(), x, feed, [tf.gather(o, rows) for o in others])[output]
            activation, _ = adapter.final_activation(y)
            _, probs, _, _ = _class_scores(y, "probability", tf.fill([batch], -1), len(shape))
            probs = probs if activation else tf.nn.softmax(probs, axis=-1)
            return tf.gather(probs, classes, batch_dims=1)

        specs = (
            tf.TensorSpec((None, *shape), tf.float32),
            tf.TensorSpec((None, *shape), tf.float32),
            tf.TensorSpec((None, *shape[:-1]), tf.int32),
            *(tf.TensorSpec((batch,), tf.int32) for _ in range(3)),
            tf.TensorSpec((), tf.bool),
            *_specs(feed),
        )
        return self._trace(perturbed, *specs)

    def _build_guided(self, output: int, score: str, input_shape: tuple[int, ...], feed: Feed | None = None) -> Any:
        model_ref = self._model
        _register_guided_gradients()

        def guided(x: tf.Tensor, classes: tf.Tensor, *others: tf.Tensor) -> tf.Tensor:
            graph = tf.compat.v1.get_default_graph()
            with graph.gradient_override_map({"Relu": _GUIDED_RELU, "Relu6": _GUIDED_RELU6}):
                outputs = adapter.call_model(model_ref(), x, feed, others)
            _, _, _, chosen = _class_scores(outputs[output], score, classes, len(input_shape))
            return _f32(tf.gradients(tf.reduce_sum(chosen), x)[0])

        return self._trace(guided, _spec(input_shape), tf.TensorSpec((None,), tf.int32), *_specs(feed))


_NO_FUNCTION = object()  # cached "this model has no such pass" (no tail), so it is not looked for again


def _spec(shape: Sequence[int]) -> tf.TensorSpec:
    return tf.TensorSpec((None, *shape), tf.float32)


def _specs(feed: Feed | None) -> list[tf.TensorSpec]:
    return [] if feed is None else feed.specs()


def _signature(feed: Feed | None) -> Any:
    return None if feed is None else feed.signature


def _rows(feed: Feed | None, n: int, image: int | None = None) -> list[tf.Tensor]:
    return [] if feed is None else [tf.convert_to_tensor(r) for r in feed.rows(n, image)]


def row_chunks(feed: Feed | None, n: int, image: int | None = None) -> Callable[[int], list[np.ndarray]]:
    """The other inputs of class_probabilities' fixed-size chunks (_SCORE_BATCH, the last padded) of `n` inputs:
    start -> one array per other input. Variants of image `image`, or shared rows: the same for every chunk;
    else (different images, one row each) the rows of the chunk's inputs, padded as the inputs are."""
    if feed is None:
        return lambda start: []
    if image is not None or all(len(value) == 1 for value in feed.others):
        same = feed.rows(_SCORE_BATCH, image)
        return lambda start: same
    full = feed.rows(n)  # one row per input: an error that says so where the count is not n

    def chunk(start: int) -> list[np.ndarray]:
        parts = [rows[start : start + _SCORE_BATCH] for rows in full]
        return [np.concatenate([p, np.zeros((_SCORE_BATCH - len(p), *p.shape[1:]), p.dtype)]) for p in parts]

    return chunk


def _f32(t: tf.Tensor) -> tf.Tensor:
    return tf.cast(t, tf.float32)


def _scores(
    y: tf.Tensor, score: str, classes: tf.Tensor, target: Any, input_rank: int = 3
) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor]:
    """As :func:`_class_scores`, or for a target: y = target(the output, its logits under "auto")."""
    if target is None:
        return _class_scores(y, score, classes, input_rank)
    _, before = adapter.final_activation(y)
    value = tf.ensure_shape(_f32(before if score == "auto" else y), y.shape)
    chosen = targets.target_scores(target, value)
    column = chosen[:, None]
    return column, column, tf.zeros_like(classes), chosen


def _class_scores(
    y: tf.Tensor, score: str, classes: tf.Tensor, input_rank: int = 3
) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor]:
    """(scores (N, C), probabilities (N, C), classes (N,), the chosen scores (N,)) for one model output.

    score "auto" takes the value before a final softmax or sigmoid (the logits): the softmax saturates, and
    its gradient mixes in every other class. A single sigmoid unit is two classes: 0 scored -z, 1 scored z.
    """
    activation, before = adapter.final_activation(y)
    if is_per_position(tuple(y.shape[1:]), input_rank):
        return _region_scores(y, before, activation, score, classes)
    batch = tf.shape(y)[0]
    probs = tf.reshape(_f32(y), (batch, -1))
    logits = tf.reshape(_f32(before), (batch, -1))
    scores = logits if score == "auto" else probs
    if activation == "sigmoid" and y.shape[1:].num_elements() == 1:
        probs = tf.concat([1.0 - probs, probs], axis=1)
        scores = tf.concat([-scores, scores], axis=1) if score == "auto" else probs
    top = tf.argmax(probs, axis=1, output_type=tf.int32)
    classes = tf.where(classes < 0, top, classes)
    chosen = tf.gather(scores, classes, batch_dims=1)
    return scores, probs, classes, chosen


def is_per_position(shape: tuple[int | None, ...], input_rank: int) -> bool:
    """An output of class scores per position with the input's own rank, (N, H, W, C) of images or (N, L, C)
    of signals: a segmentation, not (N, C) (nor a detector's (N, boxes, 4 + C))."""
    return len(shape) == input_rank >= 2 and any(d != 1 for d in shape[:-1]) and shape[-1] is not None


def _region_scores(
    y: tf.Tensor, before: tf.Tensor, activation: str | None, score: str, classes: tf.Tensor
) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor]:
    """A segmentation output: class c's score is the sum of its scores over the positions predicted as c
    (pytorch-grad-cam's SemanticSegmentationTarget with the predicted mask), y_c = sum_p [argmax_k y_pk = c] s_pc,
    s the logits under "auto". The "probabilities" shown are each class's share of the positions; None
    (-1) picks the class that covers most. A single sigmoid unit is two classes (background scored -z)."""
    batch = tf.shape(y)[0]
    probs = tf.reshape(_f32(y), (batch, -1, y.shape[-1]))
    values = tf.reshape(_f32(before if score == "auto" else y), (batch, -1, y.shape[-1]))
    if activation == "sigmoid" and y.shape[-1] == 1:
        probs = tf.concat([1.0 - probs, probs], axis=2)
        values = tf.concat([-values, values], axis=2) if score == "auto" else probs
    predicted = tf.one_hot(tf.argmax(probs, axis=2, output_type=tf.int32), probs.shape[-1])  # (N, P, C), constant
    share = tf.reduce_mean(predicted, axis=1)
    scores = tf.reduce_sum(predicted * values, axis=1)  # (N, C): each class over its own positions
    classes = tf.where(classes < 0, tf.argmax(share, axis=1, output_type=tf.int32), classes)
    chosen = tf.gather(scores, classes, batch_dims=1)
    return scores, share, classes, chosen


def num_classes(layout: ModelLayout, output: int) -> int:
    """How many classes an output scores (a single sigmoid unit counts as two)."""
    shape = layout.output_shapes[output]
    per_position = is_per_position(shape, len(layout.input_shape))
    if (shape and shape[-1] is None) or (any(d != 1 for d in shape[:-1]) and not per_position):
        raise CAMError(
            f"output {layout.output_names[output]!r} has shape (N, {', '.join(map(str, shape))}); camwidget "
            "explains outputs that give one score per class, shape (N, classes) (singleton axes are fine), or "
            "per position (N, H, W, classes); for any other output give target= a function of it"
        )
    n = int(shape[-1]) if shape else 1
    return 2 if n == 1 and layout.output_activations[output] == "sigmoid" else n


def class_vector(class_index: Any, n_images: int, n_classes: int) -> np.ndarray:
    """class_index as given by a user -> int32 (N,), -1 meaning "this image's top class"."""

    def check(c: Any) -> int:
        if isinstance(c, (bool, np.bool_)) or not isinstance(c, (int, np.integer)):
            raise TypeError(f"class_index must be an int (or None, or one int per image), not {type(c).__name__}")
        if c < 0:
            raise CAMError(f"class_index {c} is negative; classes are numbered 0..{n_classes - 1}")
        if c >= n_classes:
            raise CAMError(
                f"class_index {c} is out of range: the model's output has {n_classes} classes (0..{n_classes - 1})"
            )
        return int(c)

    if class_index is None:
        return np.full(n_images, -1, np.int32)
    if isinstance(class_index, (int, np.integer, bool, np.bool_)):
        return np.full(n_images, check(class_index), np.int32)
    if isinstance(class_index, (str, bytes)) or not hasattr(class_index, "__len__"):
        raise TypeError(f"class_index must be an int, a sequence of ints or None, not {type(class_index).__name__}")
    values = [
        check(c.item() if isinstance(c, np.generic) else c) for c in np.asarray(class_index, dtype=object).ravel()
    ]
    if len(values) != n_images:
        raise CAMError(f"class_index has {len(values)} entries for {n_images} images; give one per image, or one int")
    return np.asarray(values, np.int32)


_engines: weakref.WeakKeyDictionary[keras.Model, CAMEngine] = weakref.WeakKeyDictionary()


def engine_for(model: keras.Model) -> CAMEngine:
    """The engine of `model`, made once and freed with the model."""
    if not isinstance(model, keras.Model):
        kind = type(model)
        if kind.__module__.startswith("keras.") and hasattr(model, "layers"):
            backends.check(model)  # a Keras 3 model from before keras.config.set_backend: says so
        if kind.__module__.split(".")[0] in ("tf_keras", "keras") and hasattr(model, "layers"):
            raise TypeError(
                f"model is a Keras 2 model ({kind.__module__}.{kind.__name__}: tf_keras, as "
                "TF_USE_LEGACY_KERAS=1 gives), and camwidget reads Keras 3 models. Convert it once: "
                "model.save('model.h5') where it was made, then model = keras.models.load_model('model.h5') "
                "with Keras 3 (no TF_USE_LEGACY_KERAS)"
            )
        raise TypeError(
            f"model must be a Keras 3 model (keras.Model, Sequential or a subclass), not {type(model).__name__}"
        )
    backend = backends.check(model)
    engine = _engines.get(model)
    if engine is None:
        if backend == "tensorflow":
            engine = CAMEngine(model)
        else:
            from camwidget.engines.portable import PortableEngine

            engine = PortableEngine(model, backend)
        _engines[model] = engine
    return engine
