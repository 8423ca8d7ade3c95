"""One compiled pass per (layer, output, score, input shape): activations, gradients and class scores.

The pass runs the model once inside ``tf.function`` with the chosen layer reporting its output to a
``GradientTape`` (see :mod:`camwidget.adapter`), so Grad-CAM costs about one forward pass. Traced once
per input shape; class indices are tensors, so a new class never retraces.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from . import adapter
from .adapter import LayerInfo, ModelLayout
from .errors import CAMError, ImageError, quoted

SCORES = ("auto", "probability")
_GUIDED_RELU, _GUIDED_RELU6 = "CamwidgetGuidedRelu", "CamwidgetGuidedRelu6"
_SCORE_BATCH = 32  # masked inputs per forward pass; fixed so that the last, padded batch does not retrace


def _register_guided_gradients() -> None:
    """Guided backpropagation's ReLU gradient: pass a gradient only where it and the ReLU's output are
    positive. Registered under new names and used through gradient_override_map on a traced copy of the
    forward pass, so the model and TensorFlow's own Relu gradient are untouched."""

    def guided(op: tf.Operation, grad: tf.Tensor, upper: float | None) -> tf.Tensor:
        y = op.outputs[0]
        keep = (grad > 0) & (y > 0) if upper is None else (grad > 0) & (y > 0) & (y < upper)
        return tf.where(keep, grad, tf.zeros_like(grad))

    for name, upper in ((_GUIDED_RELU, None), (_GUIDED_RELU6, 6.0)):
        try:
            tf.RegisterGradient(name)(lambda op, grad, upper=upper: guided(op, grad, upper))
        except KeyError:  # already registered (module reloaded)
            pass


_register_guided_gradients()


@dataclass
class LayerCapture:
    """What one pass yields for N images at one layer."""

    activations: np.ndarray  # (N, h, w, K) A
    gradients: np.ndarray  # (N, h, w, K) d y_c / d A, y_c the differentiated class score
    scores: np.ndarray  # (N, C) the scores differentiated (pre-softmax logits under score="auto")
    probabilities: np.ndarray  # (N, C) the model's own output, for display
    class_index: np.ndarray  # (N,) the class each image was explained for


class CAMEngine:
    """Compiled Grad-CAM passes for one model. Holds the model weakly; never changes it."""

    def __init__(self, model: keras.Model) -> None:
        if not isinstance(model, keras.Model):
            raise TypeError(
                f"model must be a Keras 3 model (keras.Model, Sequential or a subclass), not {type(model).__name__}"
            )
        self._model = weakref.ref(model)
        self._layouts: dict[tuple[int, ...], ModelLayout] = {}
        self._functions: dict[tuple[Any, ...], Callable[..., Any]] = {}
        self.trace_count = 0

    @property
    def model(self) -> keras.Model:
        model = self._model()
        if model is None:
            raise CAMError("the model this explainer was made for no longer exists")
        return model

    # -- shapes and layout ---------------------------------------------------------------------------------

    def expected_input_shape(self) -> tuple[int | None, ...] | None:
        """(H, W, C) the model takes, None entries where any size goes; None if the model does not say."""
        return adapter.model_input_shape(self.model)

    def layout(self, image_shape: Sequence[int] | None = None) -> ModelLayout:
        """The dry-run description of the model for images of `image_shape` (H, W, C)."""
        shape = self._check_image_shape(image_shape)
        if shape not in self._layouts:
            model = self.model
            if not model.built:  # a Sequential without an Input that was never called: build it as predict would
                model(np.zeros((1, *shape), np.float32), training=False)
            self._layouts[shape] = adapter.describe_model(model, shape)
        return self._layouts[shape]

    def _check_image_shape(self, image_shape: Sequence[int] | None) -> tuple[int, ...]:
        expected = self.expected_input_shape()
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
        if len(shape) != len(expected):
            raise ImageError(f"images have shape {shape} per image, but the model takes {want}")
        for got, need, axis in zip(shape, expected, ("height", "width", "channels")):
            if need is not None and got != need:
                extra = (
                    "; resize the images first (CAMExplorer resizes for you)"
                    if axis != "channels"
                    else "; convert them (grayscale / RGB / RGBA) to match"
                )
                raise ImageError(f"images have {axis} {got}, but the model takes {need}: shape {want}{extra}")
        return shape

    def output_index(self, layout: ModelLayout, output: str | int | None) -> int:
        names = layout.output_names
        if output is None:
            if len(names) > 1:
                raise CAMError(
                    f"the model has {len(names)} outputs ({quoted(names)}); pass output= one of these names "
                    "or an index"
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
        num_classes(layout, index)  # says clearly when this output is not a class-score vector
        return index

    # -- the passes ----------------------------------------------------------------------------------------

    def capture(self, x: np.ndarray, info: LayerInfo, classes: np.ndarray, output: int, score: str) -> LayerCapture:
        """One pass over the whole model: A, dy_c/dA and the scores for images `x` (N, H, W, C)."""
        fn = self._function("full", info, output, score)
        a, g, s, p, c = fn(tf.convert_to_tensor(x, tf.float32), tf.convert_to_tensor(classes, tf.int32))
        return LayerCapture(a.numpy(), g.numpy(), s.numpy(), p.numpy(), c.numpy())

    def recapture(
        self, activations: np.ndarray, info: LayerInfo, classes: np.ndarray, output: int, score: str
    ) -> LayerCapture | None:
        """The same as :meth:`capture` from cached activations, running only the layers after the chosen one;
        None where the model's structure does not allow that (then use :meth:`capture`)."""
        fn = self._function("tail", info, output, score)
        if fn is None:
            return None
        a = tf.convert_to_tensor(activations)
        g, s, p, c = fn(a, tf.convert_to_tensor(classes, tf.int32))
        return LayerCapture(activations, g.numpy(), s.numpy(), p.numpy(), c.numpy())

    def class_probabilities(self, x: np.ndarray, output: int) -> np.ndarray:
        """(M, C) class probabilities of many inputs, in fixed-size batches: the output's own softmax or
        sigmoid, or a softmax over it where it has none."""
        fn = self._functions.get(("probabilities", output))
        if fn is None:
            fn = self._functions[("probabilities", output)] = self._build_probabilities(output)
        results = []
        for start in range(0, len(x), _SCORE_BATCH):
            chunk = x[start : start + _SCORE_BATCH]
            padded = np.concatenate([chunk, np.zeros((_SCORE_BATCH - len(chunk), *chunk.shape[1:]), chunk.dtype)])
            results.append(fn(tf.convert_to_tensor(padded, tf.float32)).numpy()[: len(chunk)])
        return np.concatenate(results)

    def guided_gradients(self, x: np.ndarray, classes: np.ndarray, output: int, score: str) -> np.ndarray:
        """Guided backpropagation: d y_c / d input with guided ReLU gradients, (N, H, W, C)."""
        key = ("guided", output, score)
        if key not in self._functions:
            self._functions[key] = self._build_guided(output, score)
        fn = self._functions[key]
        return fn(tf.convert_to_tensor(x, tf.float32), tf.convert_to_tensor(classes, tf.int32)).numpy()

    def gap_dense_kernel(self, info: LayerInfo, output: int) -> np.ndarray:
        """The (K, C) kernel of the Dense layer that follows `info` through GlobalAveragePooling2D alone, as
        CAM (Zhou et al. 2016) requires; a CAMError saying why when the model is not of that shape."""
        after = adapter.layers_after(self.model, info.path, info.shape)
        if after is None:
            raise CAMError(
                f"CAM needs to read the layers after {info.path!r}, and this model's structure (subclassed, "
                "or a layer used twice) does not show them; use 'gradcam', which equals CAM where CAM applies"
            )
        L = keras.layers
        dense_at = [i for i, layer in enumerate(after) if isinstance(layer, L.Dense)]
        fits = (
            len(dense_at) == 1
            and isinstance(after[0], L.GlobalAveragePooling2D)
            and all(isinstance(layer, (L.Dropout, L.Flatten)) for layer in after[1 : dense_at[0]])
            and all(isinstance(layer, (L.Activation, L.Softmax)) for layer in after[dense_at[0] + 1 :])
        )
        if not fits:
            kinds = ", ".join(layer.name for layer in after) or "no layers"
            raise CAMError(
                f"CAM (Zhou et al. 2016) needs layer {info.path!r} to be followed only by "
                f"GlobalAveragePooling2D and one Dense layer, so that each class score is a weighted sum of "
                f"the channel means; after it come: {kinds}. Use 'gradcam', which equals CAM on such "
                "models and works on any"
            )
        dense = after[dense_at[0]]
        return np.asarray(dense.kernel.numpy(), np.float32).reshape(dense.kernel.shape[0], -1)

    def _function(self, kind: str, info: LayerInfo, output: int, score: str) -> Callable[..., Any] | None:
        key = (kind, info.path, output, score)
        if key not in self._functions:
            build = self._build_full if kind == "full" else self._build_tail
            self._functions[key] = build(info, output, score)
        return self._functions[key]

    def _build_probabilities(self, output: int) -> Callable[..., Any]:
        model_ref = self._model

        def probabilities(x: tf.Tensor) -> tf.Tensor:
            self.trace_count += 1
            y = adapter.call_model(model_ref(), x)[output]
            activation, _ = adapter.final_activation(y)
            _, probs, _, _ = _class_scores(y, "probability", tf.fill([tf.shape(y)[0]], -1))
            return probs if activation else tf.nn.softmax(probs, axis=-1)

        return tf.function(probabilities)

    def _build_guided(self, output: int, score: str) -> Callable[..., Any]:
        model_ref = self._model

        def guided(x: tf.Tensor, classes: tf.Tensor) -> tf.Tensor:
            self.trace_count += 1
            graph = tf.compat.v1.get_default_graph()
            with graph.gradient_override_map({"Relu": _GUIDED_RELU, "Relu6": _GUIDED_RELU6}):
                outputs = adapter.call_model(model_ref(), x)
            _, _, _, chosen = _class_scores(outputs[output], score, classes)
            return _f32(tf.gradients(tf.reduce_sum(chosen), x)[0])

        return tf.function(guided)

    def _build_full(self, info: LayerInfo, output: int, score: str) -> Callable[..., Any]:
        model_ref, layer = self._model, {info.path: info.layer}

        def full_pass(x: tf.Tensor, classes: tf.Tensor) -> tuple[tf.Tensor, ...]:
            self.trace_count += 1
            captured: list[tf.Tensor] = []

            def on_output(_: str, out: tf.Tensor) -> None:
                tape.watch(out)
                captured.append(out)

            with tf.GradientTape(watch_accessed_variables=False) as tape:
                with adapter.capturing(layer, on_output):
                    outputs = adapter.call_model(model_ref(), x)
                scores, probs, classes, chosen = _class_scores(outputs[output], score, classes)
            activations = captured[0]
            grads = tape.gradient(chosen, activations)
            if grads is None:
                raise CAMError(f"output {output} does not depend on layer {info.path!r}; choose another layer")
            return _f32(activations), _f32(grads), scores, probs, classes

        return tf.function(full_pass)

    def _build_tail(self, info: LayerInfo, output: int, score: str) -> Callable[..., Any] | None:
        tail = adapter.tail_function(self.model, info.path, output)
        if tail is None:
            return None

        def tail_pass(activations: tf.Tensor, classes: tf.Tensor) -> tuple[tf.Tensor, ...]:
            self.trace_count += 1
            a = tf.cast(activations, info.layer.compute_dtype)
            with tf.GradientTape(watch_accessed_variables=False) as tape:
                tape.watch(a)
                scores, probs, classes, chosen = _class_scores(tail(a), score, classes)
            return _f32(tape.gradient(chosen, a)), scores, probs, classes

        return tf.function(tail_pass)


def _f32(t: tf.Tensor) -> tf.Tensor:
    return tf.cast(t, tf.float32)


def _class_scores(
    y: tf.Tensor, score: str, classes: tf.Tensor
) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor]:
    """(scores (N, C), probabilities (N, C), classes (N,), the chosen scores (N,)) for one model output.

    score "auto" takes the value before a final softmax or sigmoid (the logits): the softmax saturates, and
    its gradient mixes in every other class. A single sigmoid unit is two classes: 0 scored -z, 1 scored z.
    """
    activation, before = adapter.final_activation(y)
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


def num_classes(layout: ModelLayout, output: int) -> int:
    """How many classes an output scores (a single sigmoid unit counts as two)."""
    shape = layout.output_shapes[output]
    if any(d != 1 for d in shape[:-1]) or (shape and shape[-1] is None):
        raise CAMError(
            f"output {layout.output_names[output]!r} has shape (N, {', '.join(map(str, shape))}); camwidget "
            "explains outputs that give one score per class, shape (N, classes) (singleton axes are fine)"
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
    values = [check(c.item() if isinstance(c, np.generic) else c) for c in np.asarray(class_index, dtype=object).ravel()]
    if len(values) != n_images:
        raise CAMError(f"class_index has {len(values)} entries for {n_images} images; give one per image, or one int")
    return np.asarray(values, np.int32)


_engines: "weakref.WeakKeyDictionary[keras.Model, CAMEngine]" = weakref.WeakKeyDictionary()


def engine_for(model: keras.Model) -> CAMEngine:
    """The engine of `model`, made once and freed with the model."""
    if not isinstance(model, keras.Model):
        raise TypeError(
            f"model must be a Keras 3 model (keras.Model, Sequential or a subclass), not {type(model).__name__}"
        )
    engine = _engines.get(model)
    if engine is None:
        engine = _engines[model] = CAMEngine(model)
    return engine
