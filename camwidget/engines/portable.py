"""The engine for the backends without a tape (JAX, PyTorch), written in ``keras.ops``.

The capture: while the pass is traced (JAX) or run (torch), each chosen layer returns ``A + eps`` and
records A, and the class score y is differentiated with respect to eps at eps = 0, which is dy/dA
(the backend's own autodiff, :mod:`.jax_autodiff` / :mod:`.torch_autodiff`). One backward pass gives it at
every chosen layer, as the tape does under TensorFlow.

The logits: with no graph to walk, the dry run follows the model's output back to the layer that made it
(by identity of the tensors each layer returned) over Reshape / Flatten layers: a Softmax or Activation
layer's input, or what goes into a final layer's own softmax or sigmoid, read during the pass by replacing
that layer's ``activation`` for the pass (the model is unchanged after).

A class switch in the explorer runs only the layers after the chosen one from its cached A
(:meth:`PortableEngine.recapture`, :func:`camwidget.engines.tail.tail_function`), differentiated with respect to A.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import keras
import numpy as np
from keras import ops

from camwidget import progress
from camwidget.engines.backends import autodiff, needs_tensorflow
from camwidget.engines.base import (
    NO_FUNCTION,
    SCORE_BATCH,
    Capture,
    Engine,
    LayerCapture,
    MapsCapture,
    PerturbedCopies,
    Scoring,
    row_chunks,
)
from camwidget.engines.capture import capturing
from camwidget.engines.layout import LayerInfo, ModelLayout
from camwidget.engines.portable_layout import describe_model, feed_rows, is_tensor, pack
from camwidget.engines.scores import class_scores, output_scores, probabilities
from camwidget.engines.tail import tail_function
from camwidget.errors import CAMError
from camwidget.inputs.feed import Feed


class PortableEngine(Engine):
    """:class:`camwidget.engines.base.Engine` on JAX or torch: the same interface and caches; the passes are
    compiled (JAX) or run (torch) by the backend's autodiff module.

    Args:
        model: the Keras model (held weakly).
        backend: "jax" or "torch"."""

    def __init__(self, model: keras.Model, backend: str) -> None:
        super().__init__(model)
        self.backend = backend
        self._autodiff = autodiff(backend)
        self.snapshot_passes = backend == "jax"  # its passes take the weights' current arrays as arguments
        self.maps_in_pass = True

    def _describe(self, model: keras.Model, shape: tuple[int, ...], feed: Feed | None) -> ModelLayout:
        return describe_model(model, shape, feed, self._autodiff.dry_call)

    # -- the passes ----------------------------------------------------------------------------------------

    def _capture(self, x: np.ndarray, infos: Sequence[LayerInfo], spec: Scoring) -> Capture:
        """:meth:`camwidget.engines.base.Engine.capture`: the backward pass reaches the deepest layer; the
        others cost nothing more."""
        classes, output, score, target, feed = spec
        infos = sorted(infos, key=lambda i: i.order)
        key = ("capture", tuple(i.path for i in infos), output, score, x.shape[1:], target, _signature(feed))
        layout = self.layout(x.shape[1:], feed)
        _check_output_depends_on(layout, output, infos)
        fn = self._compiled(key, lambda: self._build_capture(infos, layout, output, score, target, feed))
        grads, (activations, scores, probs, chosen_classes, _) = fn(
            _input(x), np.asarray(classes, np.int32), feed_rows(feed, len(x))
        )
        paths = [i.path for i in infos]
        for path, g in zip(paths, grads):
            if g is None:
                raise CAMError(f"output {output} does not depend on layer {path!r}; choose another layer")
        return Capture(
            dict(zip(paths, activations)),
            dict(zip(paths, (np.asarray(g, np.float32) for g in grads))),
            np.asarray(scores),
            np.asarray(probs),
            np.asarray(chosen_classes),
        )

    def capture_maps(
        self,
        x: Any,
        info: LayerInfo,
        classes: np.ndarray,
        output: int,
        score: str,
        formula: Any,
        target: Any = None,
        feed: Feed | None = None,
        while_running: Callable[[], None] | None = None,
    ) -> MapsCapture:
        """The raw maps sum_k T_k of a gradient method given by its formula T(A, G, xp) (see
        :mod:`camwidget.methods`) at one layer, made inside the backend's pass: the formula runs in keras.ops on
        the device, and only the (N, h, w) maps, the (N, C) probabilities and whether every input value was
        finite leave it. `x` may be a batch already on the device (a jax.Array or torch tensor), which then
        stays there, unread by the host. `while_running()` is called while the pass runs on the device
        (JAX dispatches it and returns at once), before its results are waited for."""
        key = ("maps", info.path, output, score, tuple(x.shape[1:]), target, _signature(feed), formula)
        layout = self.layout(tuple(x.shape[1:]), feed)
        _check_output_depends_on(layout, output, [info])

        def reduce(grads: list[Any], aux: Any) -> tuple[Any, Any, Any, Any]:
            (activations, *_), _, probs, chosen_classes, finite = aux
            return ops.sum(formula(activations, grads[0], ops), axis=-1), probs, chosen_classes, finite

        fn = self._compiled(key, lambda: self._build_capture([info], layout, output, score, target, feed, reduce))
        result = fn(_input(x), np.asarray(classes, np.int32), feed_rows(feed, len(x)), while_running=while_running)
        if result is None:  # torch: the output does not depend on the layer
            raise CAMError(f"output {output} does not depend on layer {info.path!r}; choose another layer")
        maps, probs, chosen_classes, finite = result
        return MapsCapture(np.asarray(maps, np.float32), np.asarray(probs), np.asarray(chosen_classes), bool(finite))

    def _recapture(
        self, activations: np.ndarray, info: LayerInfo, spec: Scoring, image_shape: tuple[int, ...] | None
    ) -> LayerCapture | None:
        """:meth:`camwidget.engines.base.Engine.recapture`; None for a model with several inputs (another input
        may join after the layer), and where the model's structure does not allow a tail pass."""
        classes, output, score, _, feed = spec
        if feed is not None or image_shape is None:
            return None
        layout = self.layout(tuple(image_shape))
        key = ("tail", info.path, output, score, tuple(activations.shape[1:]))
        fn = self._compiled(key, lambda: self._build_tail(info, layout, output, score))
        if fn is None:
            return None
        try:
            gradients, (scores, probs, chosen_classes) = fn(
                np.asarray(activations, np.float32), np.asarray(classes, np.int32)
            )
        except CAMError:
            raise
        except Exception:  # Keras's graph did not run as read (as TensorFlow's tail): whole passes from now on
            self._functions.put(key, NO_FUNCTION)
            return None
        return LayerCapture(
            activations,
            np.asarray(gradients, np.float32),
            np.asarray(scores),
            np.asarray(probs),
            np.asarray(chosen_classes),
        )

    def class_probabilities(
        self, x: np.ndarray, output: int, feed: Feed | None = None, image: int | None = None
    ) -> np.ndarray:
        rank = len(x.shape) - 1
        key = ("probabilities", output, x.shape[1:], _signature(feed))
        layout = self.layout(x.shape[1:], feed)

        def build() -> Any:
            activation = layout.output_activations[output]

            def forward(call: Callable[[Any], Any], x: Any, others: list[Any]) -> Any:
                y = keras.tree.flatten(call(pack(feed, x, others)))[output]
                return probabilities(y, activation, rank)

            return self._autodiff.forward_pass(self._model, forward)

        fn = self._compiled(key, build)
        others_at = row_chunks(feed, len(x), image)
        results = []
        for start in range(0, len(x), SCORE_BATCH):
            progress.step(start, len(x), "masked inputs")
            chunk = np.asarray(x[start : start + SCORE_BATCH], np.float32)
            padded = np.concatenate([chunk, np.zeros((SCORE_BATCH - len(chunk), *chunk.shape[1:]), np.float32)])
            results.append(np.asarray(fn(padded, others_at(start)))[: len(chunk)])
        return np.concatenate(results)

    def _perturbed_scores(self, copies: PerturbedCopies) -> np.ndarray:
        """:meth:`camwidget.engines.base.Engine.perturbed_scores` in keras.ops: the copies are made inside the
        compiled (JAX) or no-grad (torch) pass, `batch` per call, the last padded."""
        images, baselines, ranks = copies.images, copies.baselines, copies.ranks
        output, insert, batch, feed = copies.output, copies.insert, copies.batch, copies.feed
        images, baselines, ranks = (np.asarray(a) for a in (images, baselines, ranks))
        shape = tuple(images.shape[1:])
        key = ("perturbed", output, shape, batch, bool(insert), _signature(feed))
        layout = self.layout(shape, feed)
        others = feed_rows(feed, len(images))  # one row per image, picked by `rows` in the pass

        def build() -> Any:
            activation = layout.output_activations[output]

            def forward(call: Callable[[Any], Any], images: Any, rest: list[Any]) -> Any:
                baselines, ranks, rows, counts, classes, *others = rest
                chosen = ops.take(ranks, rows, axis=0) < counts[:, None, None]  # (B, H, W): the pixels moved
                keep = chosen if insert else ops.logical_not(chosen)
                image, baseline = ops.take(images, rows, axis=0), ops.take(baselines, rows, axis=0)
                x = baseline + ops.cast(keep, "float32")[..., None] * (image - baseline)
                y = keras.tree.flatten(call(pack(feed, x, [ops.take(o, rows, axis=0) for o in others])))[output]
                probs = probabilities(y, activation, len(shape))
                return ops.take_along_axis(probs, ops.cast(classes, "int32")[:, None], axis=1)[:, 0]

            return self._autodiff.forward_pass(self._model, forward)

        fn = self._compiled(key, build)
        return copies.scored_in_batches(
            lambda rows, counts, classes: fn(images, [baselines, ranks, rows, counts, classes, *others])
        )

    def guided_gradients(self, *args: Any, **kwargs: Any) -> np.ndarray:
        raise needs_tensorflow("Guided Grad-CAM (guided backpropagation's ReLU gradients)", self.backend)

    # -- building ------------------------------------------------------------------------------------------

    def _build_capture(
        self,
        infos: Sequence[LayerInfo],
        layout: ModelLayout,
        output: int,
        score: str,
        target: Any,
        feed: Feed | None,
        reduce: Callable[[list[Any], Any], Any] | None = None,
    ) -> Any:
        self.trace_count += 1
        paths = [info.path for info in infos]
        layers = {info.path: info.layer for info in infos}
        shapes = [info.shape for info in infos]
        logit = layout.output_logits[output] if layout.output_logits else None
        activation = layout.output_activations[output]
        rank = len(layout.input_shape)
        watched = dict(layers)
        if logit is not None and logit[0] == "input":
            watched.setdefault(logit[1], layout.layers[logit[1]].layer)
        before_activation = {logit[1]: layout.layers[logit[1]].layer} if logit and logit[0] == "activation" else {}

        def forward(call: Callable[[Any], Any], eps: list[Any], x: Any, classes: Any, others: list[Any]) -> Any:
            seen: dict[str, list[Any]] = {path: [] for path in paths}
            logits: list[Any] = []

            def on_output(path: str, out: Any) -> Any:
                if path not in seen:
                    return None
                seen[path].append(out)
                if len(seen[path]) > 1 or not is_tensor(out):
                    return None
                return self._autodiff.inject(out, eps[paths.index(path)])

            def on_input(path: str, args: tuple[Any, ...]) -> None:
                if logit == ("input", path) and args:
                    logits.append(args[0])

            with capturing(
                watched,
                on_output,
                on_input=on_input,
                activations=before_activation,
                on_activation=lambda path, z: logits.append(z),
            ):
                outputs = keras.tree.flatten(call(pack(feed, x, others)))
            for path, found in seen.items():
                if len(found) != 1 or not is_tensor(found[0]):
                    raise CAMError(
                        f"layer {path!r} reported {len(found)} outputs in one forward pass where the dry run saw "
                        "one, so its map cannot be told apart safely (is the layer called from another thread "
                        "or in a loop inside the model?); choose another layer"
                    )
            y = outputs[output]
            before = ops.reshape(ops.cast(logits[-1], y.dtype), ops.shape(y)) if logits else y
            scores, probs, classes, chosen = output_scores(y, before, activation, score, classes, target, rank)
            finite = ops.all(ops.isfinite(x))  # a batch on the device is checked here, not read by the host
            return chosen, ([ops.cast(seen[p][0], "float32") for p in paths], scores, probs, classes, finite)

        return self._autodiff.gradient_pass(self._model, forward, lambda n: [(n, *s) for s in shapes], reduce)

    def _build_tail(self, info: LayerInfo, layout: ModelLayout, output: int, score: str) -> Any:
        tail = tail_function(self.model, info.path, output)
        logit = layout.output_logits[output] if layout.output_logits else None
        if tail is None or logit is not None and layout.layers[logit[1]].order <= info.order:
            return None  # the logits are read before the layer (or the layer is their own): not in the tail
        self.trace_count += 1
        activation = layout.output_activations[output]
        rank = len(layout.input_shape)
        watched = {logit[1]: layout.layers[logit[1]].layer} if logit and logit[0] == "input" else {}
        before_activation = {logit[1]: layout.layers[logit[1]].layer} if logit and logit[0] == "activation" else {}

        def forward(a: Any, classes: Any) -> tuple[Any, Any]:
            logits: list[Any] = []

            def on_input(path: str, args: tuple[Any, ...]) -> None:
                if logit == ("input", path) and args:
                    logits.append(args[0])

            with capturing(
                watched,
                lambda path, out: None,
                on_input=on_input,
                activations=before_activation,
                on_activation=lambda path, z: logits.append(z),
            ):
                y = tail(ops.cast(a, info.layer.compute_dtype))
            before = ops.reshape(ops.cast(logits[-1], y.dtype), ops.shape(y)) if logits else y
            scores, probs, classes, chosen = class_scores(y, before, activation, score, classes, rank)
            return chosen, (scores, probs, classes)

        return self._autodiff.tail_pass(self._model, forward)


def _check_output_depends_on(layout: ModelLayout, output: int, infos: Sequence[LayerInfo]) -> None:
    """The error TensorFlow's tape gives (a missing gradient), told from the dry run: JAX's gradient of an
    output that does not depend on a layer is zero, which would show as an empty map."""
    sources = layout.output_sources[output] if layout.output_sources else None
    for info in infos:
        if sources is not None and info.path not in sources:
            raise CAMError(f"output {output} does not depend on layer {info.path!r}; choose another layer")


def _signature(feed: Feed | None) -> Any:
    return None if feed is None else feed.signature


def _input(x: Any) -> Any:
    """The images as the pass takes them: NumPy float32, or the backend's own tensor as it is (on its device)."""
    return np.asarray(x, np.float32) if isinstance(x, np.ndarray) or not is_tensor(x) else x
