"""The TensorFlow engine: compiled passes with a ``GradientTape``.

The pass runs the model once inside a traced function with the chosen layers reporting their outputs to the
tape (:func:`camwidget.engines.capture.capturing`), so Grad-CAM costs about one forward pass, and one backward
pass gives the gradients at every chosen layer. Each pass is traced once, for any batch size; class indices
are tensors, so a new class never retraces. The logits under a final softmax or sigmoid are found by walking
the traced graph back from the output (:func:`camwidget.engines.tensorflow_layout.final_activation`).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

import keras
import numpy as np

from camwidget import progress
from camwidget.engines import scores as scoring
from camwidget.engines.base import (
    SCORE_BATCH,
    Capture,
    Engine,
    LayerCapture,
    PerturbedCopies,
    Reduce,
    Scoring,
    row_chunks,
)
from camwidget.engines.capture import call_model, capturing
from camwidget.engines.layout import LayerInfo, ModelLayout
from camwidget.engines.tail import tail_function
from camwidget.engines.tensorflow_layout import describe_model, feed_specs, final_activation
from camwidget.errors import CAMError
from camwidget.inputs.feed import Feed
from camwidget.tensorflow_lazy import tf

_GUIDED_RELU, _GUIDED_RELU6 = "CamwidgetGuidedRelu", "CamwidgetGuidedRelu6"


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


class TensorFlowEngine(Engine):
    """:class:`camwidget.engines.base.Engine` on TensorFlow: every pass is a concrete function traced once for an
    explicit input signature (any batch size), kept in the engine's bounded cache."""

    def _describe(self, model: keras.Model, shape: tuple[int, ...], feed: Feed | None) -> ModelLayout:
        return describe_model(model, shape, feed)

    def _capture(self, x: np.ndarray, infos: Sequence[LayerInfo], spec: Scoring) -> Capture:
        """:meth:`camwidget.engines.base.Engine.capture`: the backward pass reaches the deepest layer; the
        others cost nothing more."""
        return self._run_capture(x, infos, spec)

    def _run_capture(
        self, x: np.ndarray, infos: Sequence[LayerInfo], spec: Scoring, reduce: Reduce | None = None
    ) -> Any:
        """The capture pass, traced once per (layers, output, score, shape, target, feed, reduce); with `reduce`,
        the input watched too and only what `reduce` makes of each layer and of the input leaves the pass:
        ({path: reduce(info, A, G)}, reduce(None, x, dy_c/dx), probabilities, classes)."""
        classes, output, score, target, feed = spec
        infos = sorted(infos, key=lambda i: i.order)
        key = ("capture", tuple(i.path for i in infos), output, score, x.shape[1:], target, _signature(feed), reduce)
        fn = self._compiled(key, lambda: self._build_capture(infos, output, score, x.shape[1:], target, feed, reduce))
        a, g, s, p, c = fn(
            tf.convert_to_tensor(x, tf.float32), tf.convert_to_tensor(classes, tf.int32), *_rows(feed, len(x))
        )
        paths = [i.path for i in infos]
        if reduce is not None:  # a: each layer's reduction, g: the input's
            return dict(zip(paths, (t.numpy() for t in a))), g.numpy(), p.numpy(), c.numpy()
        return Capture(
            dict(zip(paths, (t.numpy() for t in a))),
            dict(zip(paths, (t.numpy() for t in g))),
            s.numpy(),
            p.numpy(),
            c.numpy(),
        )

    def _recapture(
        self, activations: np.ndarray, info: LayerInfo, spec: Scoring, image_shape: tuple[int, ...] | None
    ) -> LayerCapture | None:
        """:meth:`camwidget.engines.base.Engine.recapture`; None for a model with several inputs (another input
        may join after the layer), and where the model's structure does not allow a tail pass."""
        classes, output, score, _, feed = spec
        if feed is not None:
            return None
        key = ("tail", info.path, output, score, activations.shape[1:])
        fn = self._compiled(key, lambda: self._build_tail(info, output, score, activations.shape[1:]))
        if fn is None:
            return None
        g, s, p, c = fn(tf.convert_to_tensor(activations, tf.float32), tf.convert_to_tensor(classes, tf.int32))
        return LayerCapture(activations, g.numpy(), s.numpy(), p.numpy(), c.numpy())

    def tail_hessian_vector(
        self, activations: np.ndarray, info: LayerInfo, classes: np.ndarray, output: int, score: str
    ) -> tuple[np.ndarray, np.ndarray] | None:
        """:meth:`camwidget.engines.base.Engine.tail_hessian_vector`: two nested tapes over the layers after the
        layer, traced once per (layer, output, score, shape)."""
        key = ("tail_hvp", info.path, output, score, activations.shape[1:])
        fn = self._compiled(key, lambda: self._build_tail_hvp(info, output, score, activations.shape[1:]))
        if fn is None:
            return None
        g, hv = fn(tf.convert_to_tensor(activations, tf.float32), tf.convert_to_tensor(classes, tf.int32))
        return g.numpy(), hv.numpy()

    def capture_with_input_gradient(
        self, x: np.ndarray, infos: Sequence[LayerInfo], reduce: Reduce, spec: Scoring
    ) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray, np.ndarray] | None:
        """:meth:`camwidget.engines.base.Engine.capture_with_input_gradient`: :meth:`capture`'s pass with the input
        watched too, each reduction made in the graph, so FullGrad is one forward and one backward whose
        layers' A and G never leave the pass."""
        return self._run_capture(x, infos, spec, reduce)

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
        for start in range(0, len(x), SCORE_BATCH):
            progress.step(start, len(x), "masked inputs")
            chunk = x[start : start + SCORE_BATCH]
            padded = np.concatenate([chunk, np.zeros((SCORE_BATCH - len(chunk), *chunk.shape[1:]), chunk.dtype)])
            others = [tf.convert_to_tensor(r) for r in others_at(start)]
            results.append(fn(tf.convert_to_tensor(padded, tf.float32), *others).numpy()[: len(chunk)])
        return np.concatenate(results)

    def _perturbed_scores(self, copies: PerturbedCopies) -> np.ndarray:
        """Class probabilities of perturbed copies: copy k is image rows[k] with its counts[k] pixels of lowest
        rank replaced by its baseline (deletion), or the only ones kept from it, the rest baseline (insertion),
        scored for classes[k]. The copies are made in the graph, `batch` per call (the last padded), from the
        images, baselines (N, H, W, C) and ranks (N, H, W) given once as tensors, so none is made in NumPy.
        With a feed, copy k goes with image rows[k]'s other inputs."""
        images, baselines, ranks = copies.images, copies.baselines, copies.ranks
        output, insert, batch, feed = copies.output, copies.insert, copies.batch, copies.feed
        shape = tuple(images.shape[1:])
        key = ("perturbed", output, shape, batch, _signature(feed))
        fn = self._compiled(key, lambda: self._build_perturbed(output, shape, batch, feed))
        others = _rows(feed, len(images))  # one row per image, picked by `rows` in the graph
        flag = tf.constant(insert)
        return copies.scored_in_batches(
            lambda rows, counts, classes: fn(
                images, baselines, ranks, *(tf.convert_to_tensor(v) for v in (rows, counts, classes)), flag, *others
            ).numpy()
        )

    def guided_gradients(
        self, x: np.ndarray, classes: np.ndarray, output: int, score: str, feed: Feed | None = None
    ) -> np.ndarray:
        """Guided backpropagation: d y_c / d input with guided ReLU gradients, (N, H, W, C)."""
        key = ("guided", output, score, x.shape[1:], _signature(feed))
        fn = self._compiled(key, lambda: self._build_guided(output, score, x.shape[1:], feed))
        return fn(
            tf.convert_to_tensor(x, tf.float32), tf.convert_to_tensor(classes, tf.int32), *_rows(feed, len(x))
        ).numpy()

    # -- building the compiled passes ----------------------------------------------------------------------

    def _trace(self, fn: Callable[..., Any], *specs: tf.TensorSpec) -> Any:
        """`fn` traced once for `specs`: a concrete function, which never retraces."""
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
        reduce: Reduce | None = None,
    ) -> Any:
        model_ref, layers = self._model, {info.path: info.layer for info in infos}
        by_path = {info.path: info for info in infos}

        def full_pass(x: tf.Tensor, classes: tf.Tensor, *others: tf.Tensor) -> tuple[Any, ...]:
            captured: dict[str, list[tf.Tensor]] = {path: [] for path in layers}

            def on_output(path: str, out: tf.Tensor) -> None:
                tape.watch(out)
                captured[path].append(out)

            with tf.GradientTape(watch_accessed_variables=False) as tape:
                if reduce is not None:
                    tape.watch(x)
                with capturing(layers, on_output):
                    outputs = call_model(model_ref(), x, feed, others)
                scores, probs, classes, chosen = _scores(outputs[output], score, classes, target, len(input_shape))
            for path, seen in captured.items():
                if len(seen) != 1 or not isinstance(seen[0], tf.Tensor):
                    raise CAMError(
                        f"layer {path!r} reported {len(seen)} outputs in one forward pass where the dry run saw "
                        "one, so its map cannot be told apart safely (is the layer called from another thread "
                        "or in a loop inside the model?); choose another layer"
                    )
            activations = [captured[path][0] for path in layers]
            sources = activations + [x] if reduce is not None else activations
            grads = tape.gradient(chosen, sources, unconnected_gradients=tf.UnconnectedGradients.NONE)
            dx = grads[len(activations) :]
            grads = grads[: len(activations)]
            for path, g in zip(layers, grads):
                if g is None and target is not None:
                    raise CAMError(
                        f"target {target!r} gives no gradient at layer {path!r}: it must be differentiable in the "
                        "model's output (no argmax, rounding or cast to int), and depend on this layer"
                    )
                if g is None:
                    raise CAMError(f"output {output} does not depend on layer {path!r}; choose another layer")
            if reduce is not None:  # a picture that does not reach the score has a zero gradient
                reduced = [reduce(by_path[p], _f32(a), _f32(g)) for p, a, g in zip(layers, activations, grads)]
                return (
                    reduced,
                    reduce(None, x, _f32(tf.zeros_like(x) if dx[0] is None else dx[0])),
                    scores,
                    probs,
                    classes,
                )
            return [_f32(a) for a in activations], [_f32(g) for g in grads], scores, probs, classes

        return self._trace(full_pass, _spec(input_shape), tf.TensorSpec((None,), tf.int32), *_specs(feed))

    def _build_tail(self, info: LayerInfo, output: int, score: str, shape: tuple[int, ...]) -> Any:
        tail = tail_function(self.model, info.path, output)
        if tail is None:
            return None
        rank = len(self.expected_input_shape() or (None, None, None))

        def tail_pass(activations: tf.Tensor, classes: tf.Tensor) -> tuple[tf.Tensor, ...]:
            a = tf.cast(activations, info.layer.compute_dtype)
            with tf.GradientTape(watch_accessed_variables=False) as tape:
                tape.watch(a)
                scores, probs, classes, chosen = _scores(tail(a), score, classes, None, rank)
            return _f32(tape.gradient(chosen, a)), scores, probs, classes

        try:
            return self._trace(tail_pass, _spec(shape), tf.TensorSpec((None,), tf.int32))
        except CAMError:
            raise
        except Exception:  # Keras's graph did not run as read: fall back to full passes
            return None

    def _build_tail_hvp(self, info: LayerInfo, output: int, score: str, shape: tuple[int, ...]) -> Any:
        tail = tail_function(self.model, info.path, output)
        if tail is None:
            return None
        rank = len(self.expected_input_shape() or (None, None, None))

        def tail_hvp(activations: tf.Tensor, classes: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
            a = tf.cast(activations, info.layer.compute_dtype)
            with tf.GradientTape(watch_accessed_variables=False) as outer:
                outer.watch(a)
                with tf.GradientTape(watch_accessed_variables=False) as inner:
                    inner.watch(a)
                    _, _, _, chosen = _scores(tail(a), score, classes, None, rank)
                g = inner.gradient(chosen, a)
                along = tf.reduce_sum(g * tf.stop_gradient(a))
            hv = outer.gradient(along, a, unconnected_gradients=tf.UnconnectedGradients.ZERO)
            return _f32(g), _f32(hv)

        try:
            return self._trace(tail_hvp, _spec(shape), tf.TensorSpec((None,), tf.int32))
        except CAMError:
            raise
        except Exception:  # Keras's graph did not run as read: no tail pass for this layer
            return None

    def _build_probabilities(self, output: int, input_shape: tuple[int, ...], feed: Feed | None = None) -> Any:
        model_ref = self._model

        def probabilities(x: tf.Tensor, *others: tf.Tensor) -> tf.Tensor:
            y = call_model(model_ref(), x, feed, others)[output]
            return scoring.probabilities(y, final_activation(y)[0], len(input_shape))

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
            y = call_model(model_ref(), x, feed, [tf.gather(o, rows) for o in others])[output]
            probs = scoring.probabilities(y, final_activation(y)[0], len(shape))
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
                outputs = call_model(model_ref(), x, feed, others)
            _, _, _, chosen = _scores(outputs[output], score, classes, None, len(input_shape))
            return _f32(tf.gradients(tf.reduce_sum(chosen), x)[0])

        return self._trace(guided, _spec(input_shape), tf.TensorSpec((None,), tf.int32), *_specs(feed))


def _spec(shape: Sequence[int]) -> tf.TensorSpec:
    return tf.TensorSpec((None, *shape), tf.float32)


def _specs(feed: Feed | None) -> list[tf.TensorSpec]:
    return feed_specs(feed)


def _signature(feed: Feed | None) -> Any:
    return None if feed is None else feed.signature


def _rows(feed: Feed | None, n: int, image: int | None = None) -> list[tf.Tensor]:
    return [] if feed is None else [tf.convert_to_tensor(r) for r in feed.rows(n, image)]


def _f32(t: tf.Tensor) -> tf.Tensor:
    return tf.cast(t, tf.float32)


def _scores(y: tf.Tensor, score: str, classes: tf.Tensor, target: Any, input_rank: int) -> tuple[tf.Tensor, ...]:
    """:func:`camwidget.engines.scores.output_scores` of a traced output, its logits read off the graph."""
    activation, before = final_activation(y)
    before = tf.ensure_shape(before, y.shape)  # the reshape to tf.shape(y) loses the static shape a target reads
    return scoring.output_scores(y, before, activation, score, classes, target, input_rank)
