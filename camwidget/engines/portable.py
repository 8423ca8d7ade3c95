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
(:meth:`PortableEngine.recapture`, :func:`camwidget.keras_private.tail_function`), differentiated with respect to A.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import keras
import numpy as np
from keras import ops

from camwidget import keras_private, targets
from camwidget.engines import adapter, engine
from camwidget.engines.adapter import LayerInfo, ModelLayout
from camwidget.engines.backends import autodiff, needs_tensorflow
from camwidget.errors import CAMError
from camwidget.inputs.feed import Feed

_PASS_THROUGH_LAYERS = (keras.layers.Reshape, keras.layers.Flatten, keras.layers.Identity)


class PortableEngine(engine.CAMEngine):
    """:class:`camwidget.engines.engine.CAMEngine` on JAX or torch: the same interface and caches; the passes are
    compiled (JAX) or run (torch) by the backend's autodiff module."""

    def __init__(self, model: keras.Model, backend: str) -> None:
        super().__init__(model)
        self.backend = backend
        self._autodiff = autodiff(backend)
        self.snapshot_passes = backend == "jax"  # its passes take the weights' current arrays as arguments
        self.maps_in_pass = True

    def _describe(self, model: keras.Model, shape: tuple[int, ...], feed: Feed | None) -> ModelLayout:
        return describe_model(model, shape, feed, self._autodiff.dry_call)

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
    ) -> engine.Capture:
        infos = sorted(infos, key=lambda i: i.order)
        key = ("capture", tuple(i.path for i in infos), output, score, x.shape[1:], target, engine._signature(feed))
        layout = self.layout(x.shape[1:], feed)
        _check_output_depends_on(layout, output, infos)
        fn = self._compiled(key, lambda: self._build_capture(infos, layout, output, score, target, feed))
        grads, (activations, scores, probs, chosen_classes, _) = fn(
            _input(x), np.asarray(classes, np.int32), _rows(feed, len(x))
        )
        paths = [i.path for i in infos]
        for path, g in zip(paths, grads):
            if g is None:
                raise CAMError(f"output {output} does not depend on layer {path!r}; choose another layer")
        return engine.Capture(
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
    ) -> engine.MapsCapture:
        """The raw maps sum_k T_k of a gradient method given by its formula T(A, G, xp) (see
        :mod:`camwidget.methods`) at one layer, made inside the backend's pass: the formula runs in keras.ops on
        the device, and only the (N, h, w) maps, the (N, C) probabilities and whether every input value was
        finite leave it. `x` may be a batch already on the device (a jax.Array or torch tensor), which then
        stays there, unread by the host. `while_running()` is called while the pass runs on the device
        (JAX dispatches it and returns at once), before its results are waited for."""
        key = ("maps", info.path, output, score, tuple(x.shape[1:]), target, engine._signature(feed), formula)
        layout = self.layout(tuple(x.shape[1:]), feed)
        _check_output_depends_on(layout, output, [info])

        def reduce(grads: list[Any], aux: Any) -> tuple[Any, Any, Any, Any]:
            (activations, *_), _, probs, chosen_classes, finite = aux
            return ops.sum(formula(activations, grads[0], ops), axis=-1), probs, chosen_classes, finite

        fn = self._compiled(key, lambda: self._build_capture([info], layout, output, score, target, feed, reduce))
        result = fn(_input(x), np.asarray(classes, np.int32), _rows(feed, len(x)), while_running=while_running)
        if result is None:  # torch: the output does not depend on the layer
            raise CAMError(f"output {output} does not depend on layer {info.path!r}; choose another layer")
        maps, probs, chosen_classes, finite = result
        return engine.MapsCapture(
            np.asarray(maps, np.float32), np.asarray(probs), np.asarray(chosen_classes), bool(finite)
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
    ) -> engine.LayerCapture | None:
        """:meth:`camwidget.engines.engine.CAMEngine.recapture`: dy/dA for other classes from the cached A, running only
        the layers after the chosen one (:func:`camwidget.keras_private.tail_function`) with the weights as they are
        now; None where the model's structure does not allow it, or its logits are not read after the layer."""
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
            self._functions.put(key, engine._NO_FUNCTION)
            return None
        return engine.LayerCapture(
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
        key = ("probabilities", output, x.shape[1:], engine._signature(feed))
        layout = self.layout(x.shape[1:], feed)

        def build() -> Any:
            activation = layout.output_activations[output]

            def forward(call: Callable[[Any], Any], x: Any, others: list[Any]) -> Any:
                y = keras.tree.flatten(call(_pack(feed, x, others)))[output]
                _, probs, _, _ = class_scores(y, y, activation, "probability", ops.full((ops.shape(y)[0],), -1), rank)
                return probs if activation else ops.softmax(probs, axis=-1)

            return self._autodiff.forward_pass(self._model, forward)

        fn = self._compiled(key, build)
        others_at = engine.row_chunks(feed, len(x), image)
        results = []
        for start in range(0, len(x), engine._SCORE_BATCH):
            engine.progress.step(start, len(x), "masked inputs")
            chunk = np.asarray(x[start : start + engine._SCORE_BATCH], np.float32)
            padded = np.concatenate([chunk, np.zeros((engine._SCORE_BATCH - len(chunk), *chunk.shape[1:]), np.float32)])
            results.append(np.asarray(fn(padded, others_at(start)))[: len(chunk)])
        return np.concatenate(results)

    def perturbed_scores(
        self,
        images: Any,
        baselines: Any,
        ranks: Any,
        rows: np.ndarray,
        counts: np.ndarray,
        classes: np.ndarray,
        output: int,
        insert: bool,
        batch: int = 32,
        feed: Feed | None = None,
    ) -> np.ndarray:
        """:meth:`camwidget.engines.engine.CAMEngine.perturbed_scores` in keras.ops: the copies are made inside the
        compiled (JAX) or no-grad (torch) pass, `batch` per call, the last padded."""
        images, baselines, ranks = (np.asarray(a) for a in (images, baselines, ranks))
        shape = tuple(images.shape[1:])
        key = ("perturbed", output, shape, batch, bool(insert), engine._signature(feed))
        layout = self.layout(shape, feed)
        others = _rows(feed, len(images))  # one row per image, picked by `rows` in the pass

        def build() -> Any:
            activation = layout.output_activations[output]

            def forward(call: Callable[[Any], Any], images: Any, rest: list[Any]) -> Any:
                baselines, ranks, rows, counts, classes, *others = rest
                chosen = ops.take(ranks, rows, axis=0) < counts[:, None, None]  # (B, H, W): the pixels moved
                keep = chosen if insert else ops.logical_not(chosen)
                image, baseline = ops.take(images, rows, axis=0), ops.take(baselines, rows, axis=0)
                x = baseline + ops.cast(keep, "float32")[..., None] * (image - baseline)
                y = keras.tree.flatten(call(_pack(feed, x, [ops.take(o, rows, axis=0) for o in others])))[output]
                _, probs, _, _ = class_scores(y, y, activation, "probability", ops.full((batch,), -1), len(shape))
                probs = probs if activation else ops.softmax(probs, axis=-1)
                return ops.take_along_axis(probs, ops.cast(classes, "int32")[:, None], axis=1)[:, 0]

            return self._autodiff.forward_pass(self._model, forward)

        fn = self._compiled(key, build)
        scores = np.empty(len(rows), np.float32)
        for start in range(0, len(rows), batch):
            engine.progress.step(start, len(rows), "perturbed copies")
            chunk = slice(start, start + batch)
            n = len(rows[chunk])

            def padded(values: np.ndarray) -> np.ndarray:
                out = np.zeros(batch, np.int32)
                out[:n] = values[chunk]
                return out

            result = fn(images, [baselines, ranks, padded(rows), padded(counts), padded(classes), *others])
            scores[start : start + n] = np.asarray(result)[:n]
        return scores

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
                if len(seen[path]) > 1 or not _is_tensor(out):
                    return None
                return self._autodiff.inject(out, eps[paths.index(path)])

            def on_input(path: str, args: tuple[Any, ...]) -> None:
                if logit == ("input", path) and args:
                    logits.append(args[0])

            with adapter.capturing(
                watched,
                on_output,
                on_input=on_input,
                activations=before_activation,
                on_activation=lambda path, z: logits.append(z),
            ):
                outputs = keras.tree.flatten(call(_pack(feed, x, others)))
            for path, found in seen.items():
                if len(found) != 1 or not _is_tensor(found[0]):
                    raise CAMError(
                        f"layer {path!r} reported {len(found)} outputs in one forward pass where the dry run saw "
                        "one, so its map cannot be told apart safely (is the layer called from another thread "
                        "or in a loop inside the model?); choose another layer"
                    )
            y = outputs[output]
            before = ops.reshape(ops.cast(logits[-1], y.dtype), ops.shape(y)) if logits else y
            if target is None:
                scores, probs, classes, chosen = class_scores(y, before, activation, score, classes, rank)
            else:
                chosen = targets.target_scores(target, ops.cast(before if score == "auto" else y, "float32"))
                scores = probs = chosen[:, None]
                classes = ops.zeros_like(classes)
            finite = ops.all(ops.isfinite(x))  # a batch on the device is checked here, not read by the host
            return chosen, ([ops.cast(seen[p][0], "float32") for p in paths], scores, probs, classes, finite)

        return self._autodiff.gradient_pass(self._model, forward, lambda n: [(n, *s) for s in shapes], reduce)

    def _build_tail(self, info: LayerInfo, layout: ModelLayout, output: int, score: str) -> Any:
        tail = keras_private.tail_function(self.model, info.path, output)
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

            with adapter.capturing(
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


def _input(x: Any) -> Any:
    """The images as the pass takes them: NumPy float32, or the backend's own tensor as it is (on its device)."""
    return np.asarray(x, np.float32) if isinstance(x, np.ndarray) or not _is_tensor(x) else x


def _is_tensor(value: Any) -> bool:
    return hasattr(value, "shape") and hasattr(value, "dtype") and not isinstance(value, np.ndarray)


def _pack(feed: Feed | None, x: Any, others: Sequence[Any]) -> Any:
    return x if feed is None else feed.pack(x, others)


def _rows(feed: Feed | None, n: int, image: int | None = None) -> list[np.ndarray]:
    return [] if feed is None else feed.rows(n, image)


def class_scores(
    y: Any, before: Any, activation: str | None, score: str, classes: Any, input_rank: int = 3
) -> tuple[Any, Any, Any, Any]:
    """:func:`camwidget.engines.engine._class_scores` in keras.ops: (scores (N, C), probabilities (N, C),
    classes (N,), the chosen scores (N,)); `before` is the output before its final softmax or sigmoid."""
    classes = ops.cast(classes, "int32")
    if engine.is_per_position(tuple(y.shape[1:]), input_rank):
        return _region_scores(y, before, activation, score, classes)
    n = y.shape[0]
    probs = ops.reshape(ops.cast(y, "float32"), (n, -1))
    logits = ops.reshape(ops.cast(before, "float32"), (n, -1))
    scores = logits if score == "auto" else probs
    if activation == "sigmoid" and probs.shape[1] == 1:
        probs = ops.concatenate([1.0 - probs, probs], axis=1)
        scores = ops.concatenate([-scores, scores], axis=1) if score == "auto" else probs
    top = ops.cast(ops.argmax(probs, axis=1), "int32")
    classes = ops.where(classes < 0, top, classes)
    chosen = ops.take_along_axis(scores, classes[:, None], axis=1)[:, 0]
    return scores, probs, classes, chosen


def _region_scores(y: Any, before: Any, activation: str | None, score: str, classes: Any) -> tuple[Any, Any, Any, Any]:
    """:func:`camwidget.engines.engine._region_scores` in keras.ops: class c scored over the positions predicted as c."""
    n, c = y.shape[0], y.shape[-1]
    probs = ops.reshape(ops.cast(y, "float32"), (n, -1, c))
    values = ops.reshape(ops.cast(before if score == "auto" else y, "float32"), (n, -1, c))
    if activation == "sigmoid" and c == 1:
        probs = ops.concatenate([1.0 - probs, probs], axis=2)
        values = ops.concatenate([-values, values], axis=2) if score == "auto" else probs
    predicted = ops.stop_gradient(ops.one_hot(ops.argmax(probs, axis=2), probs.shape[-1]))
    share = ops.mean(predicted, axis=1)
    scores = ops.sum(predicted * values, axis=1)
    classes = ops.where(classes < 0, ops.cast(ops.argmax(share, axis=1), "int32"), classes)
    chosen = ops.take_along_axis(scores, classes[:, None], axis=1)[:, 0]
    return scores, share, classes, chosen


# -- the dry run ----------------------------------------------------------------------------------------------


def describe_model(
    model: keras.Model,
    input_shape: tuple[int, ...],
    feed: Feed | None = None,
    dry_call: Callable[[keras.Model, Callable[..., Any]], Any] | None = None,
) -> ModelLayout:
    """Run the model once on one zero input (and the feed's other inputs) and describe its layers: what
    :func:`camwidget.engines.adapter.describe_model` learns from a traced graph, learned from the tensors each layer
    takes and returns."""
    layers = adapter.readable_layers(model)
    calls: dict[str, list[tuple[tuple[Any, ...], Any]]] = {p: [] for p in layers}
    order: list[str] = []
    pending: dict[str, tuple[Any, ...]] = {}

    def on_input(path: str, args: tuple[Any, ...]) -> None:
        pending[path] = args

    def on_output(path: str, out: Any) -> None:
        calls[path].append((pending.pop(path, ()), out))
        order.append(path)

    x = np.zeros((1, *input_shape), np.float32)
    first = _rows(feed, 1, image=0)  # the first image's other inputs (one row each), where there is one per image
    inputs = _pack(feed, ops.convert_to_tensor(x), [ops.convert_to_tensor(r) for r in first])

    def attempt(call: Callable[[Any], Any]) -> Any:
        for seen in calls.values():
            seen.clear()
        order.clear()
        pending.clear()
        with adapter.capturing(layers, on_output, on_input=on_input):
            return call(inputs)

    try:
        if dry_call is None:
            raw = attempt(lambda inputs: model(inputs, training=False))
        else:
            raw = dry_call(model, attempt)
    except CAMError:
        raise
    except Exception as exc:  # the model itself refused this input
        raise adapter.refused(exc, input_shape) from exc
    outputs = keras.tree.flatten(raw)
    producer = {
        id(out): path for path, seen in calls.items() for _, result in seen for out in keras.tree.flatten(result)
    }

    def made(tensor: Any) -> str | None:
        return producer.get(id(tensor))

    logits = [_logit_source(y, made, layers, calls) for y in outputs]
    ends = {id(y) for y in outputs} | {id(t) for t in (_logit_tensor(s, calls) for s in logits) if t is not None}
    needed = _reaching(outputs, made, calls, inputs)

    infos = adapter.layer_infos(
        layers,
        {p: [result for _, result in seen] for p, seen in calls.items()},
        order,
        input_shape,
        _is_tensor,
        reaches=lambda path, t: needed is None or path in needed,
        is_end=lambda t: id(t) in ends,
    )
    return ModelLayout(
        input_shape=tuple(input_shape),
        layers=infos,
        output_names=adapter.output_names(model, raw, len(outputs)),
        output_shapes=[tuple(int(d) for d in y.shape[1:]) for y in outputs],
        output_activations=[None if s is None else s[0] for s in logits],
        nested_models=[p for p, l in keras_private.walk_layers(model) if isinstance(l, keras.Model)],
        output_logits=[None if s is None else s[1] for s in logits],
        output_sources=[_reaching([y], made, calls, inputs) for y in outputs],
    )


def _activation_kind(function: Any) -> str | None:
    name = getattr(function, "__name__", None)
    return name if name in ("softmax", "sigmoid") else None


def _logit_source(
    y: Any, made: Callable[[Any], str | None], layers: dict[str, keras.layers.Layer], calls: dict[str, list[Any]]
) -> tuple[str, tuple[str, str]] | None:
    """(kind, where its logits are read) for one model output, or None where it ends in no softmax/sigmoid."""
    path = made(y)
    while path is not None and isinstance(layers[path], _PASS_THROUGH_LAYERS) and calls[path][-1][0]:
        path = made(calls[path][-1][0][0])
    if path is None:
        return None
    layer = layers[path]
    if isinstance(layer, keras.layers.Softmax):
        return "softmax", ("input", path)
    kind = _activation_kind(getattr(layer, "activation", None))
    if kind is None:
        return None
    return kind, ("input" if isinstance(layer, keras.layers.Activation) else "activation", path)


def _logit_tensor(source: tuple[str, tuple[str, str]] | None, calls: dict[str, list[Any]]) -> Any:
    """The dry run's logits tensor of an output whose logits are a layer's input (to mark that layer)."""
    if source is None or source[1][0] != "input" or not calls[source[1][1]][-1][0]:
        return None
    return calls[source[1][1]][-1][0][0]


def _reaching(
    outputs: list[Any], made: Callable[[Any], str | None], calls: dict[str, list[Any]], inputs: Any
) -> set[str] | None:
    """The layers the outputs are computed from, followed back through the tensors each layer took (the layers
    inside one that is needed count as needed); None where a tensor on the way was made by something other
    than a layer (an op in a subclassed call()), so that dependence cannot be told: then every layer counts."""
    sources = [t for t in keras.tree.flatten(inputs) if _is_tensor(t)]
    needed: set[str] = set()
    stack = list(outputs)
    while stack:
        tensor = stack.pop()
        path = made(tensor)
        if path is None:
            if not _is_tensor(tensor) or len(tensor.shape) == 0:
                continue
            if any(tensor is s or tuple(tensor.shape) == tuple(s.shape) for s in sources):
                continue  # an input, as given or as a nested model converted it
            return None
        if path in needed:
            continue
        needed.add(path)
        for args, _ in calls[path]:
            stack.extend(t for t in keras.tree.flatten(args) if _is_tensor(t))
    inside = tuple(p + "/" for p in needed)
    return needed | {p for p in calls if p.startswith(inside)}
