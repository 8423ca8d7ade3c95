"""Has the model changed since we last looked? A cheap answer, asked before every computation.

Two things can make cached work wrong:

* **Structure**, which a traced pass bakes in: the layers, their Python attributes (an activation function
  replaced, ``trainable`` flipped, a Sequential grown by ``add``), a ``call`` replaced. Read from the layer
  objects' own attributes: :func:`structure_signature`. A change drops every traced pass and dry run.
* **Values**, which a traced pass reads afresh on every run but which cached activations, gradients and maps
  were computed from: weights after ``fit``, ``set_weights``, ``load_weights``, a custom training loop.
  Read by :class:`WeightsFingerprint`: one compiled pass that takes a weighted sum (and a plain sum) over
  every value of each small variable (at most 1024 values) and 1024 evenly spread values of each large one,
  plus the model's optimizer step counter. A change drops every cached value.

Cost on VGG16: about 0.3 ms for the values and 0.3 ms for the structure, against a forward pass of
about 100 ms (``benchmarks/bench_widget.py`` prints it). A change to a few values of a large kernel that
misses all the sampled positions is the one change this cannot see; ``refresh()`` exists for that.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import keras
import numpy as np

from camwidget import keras_private
from camwidget.tensorflow_lazy import tf

_SAMPLES = 1024
_WAIT_FOR_DONATED_S = 30.0  # how long a read waits for an array that Keras's JAX trainer donated and replaces

# Attributes that Keras sets on a model while compiling, fitting, predicting or evaluating: they say nothing
# about what the forward pass computes.
_VOLATILE = frozenset(
    {
        "built",
        "compiled",
        "optimizer",
        "loss",
        "history",
        "stop_training",
        "stop_evaluating",
        "stop_predicting",
        "training",
        "train_function",
        "test_function",
        "predict_function",
        "make_train_function",
        "steps_per_execution",
        "compiled_loss",
        "compiled_metrics",
        "metrics",
        "loss_tracker",
    }
)
_PRIMITIVE = (int, float, str, bool, type(None), np.generic)


def _attribute_token(value: Any) -> Any:
    """What an attribute's value contributes to the signature: primitives by value, tuples of them by value,
    anything else (functions, layers, variables, policies) by identity; a capture's stand-in by what it stands
    for."""
    if isinstance(value, _PRIMITIVE):
        return value
    value = getattr(value, "camwidget_original", value)
    if isinstance(value, tuple) and all(isinstance(v, _PRIMITIVE) for v in value):
        return value
    return ("id", id(value))


_NOT_READ = _VOLATILE | {"call"}  # call: read on its own, a capture's stand-in excepted


def structure_signature(model: keras.Model) -> tuple[Any, ...]:
    """A value that changes when anything a traced forward pass depends on changes, other than weights.
    Attributes are read in the order the layer holds them: an attribute deleted and set again reads as a
    change (a pass traced again), never the other way round. It runs before every view: kept lean."""
    parts: list[Any] = []
    for path, layer, children in [
        ("", model, keras_private.child_layers(model)),
        *keras_private.walk_layers_with_children(model),
    ]:
        attributes = vars(layer)
        call = attributes.get("call")
        token = [
            path,
            type(layer),
            id(layer),
            attributes.get("_trainable"),
            id(attributes.get("_dtype_policy")),
            None if call is None or getattr(call, "camwidget_capture", False) else id(call),  # ours is no change
            *(id(child) for child in children),
            *(
                (key, _attribute_token(value))
                for key, value in attributes.items()
                if key[0] != "_" and key not in _NOT_READ
            ),
        ]
        parts.append(tuple(token))
    return tuple(parts)


class WeightsFingerprint:
    """A small float64 vector that changes when the model's variables or its optimizer step change."""

    def __init__(self, model: keras.Model) -> None:
        self._variables = [v for v in model.variables if _numeric(v)]
        self._fn: Callable[[], np.ndarray] | None = None
        self._lock = threading.Lock()

    def __call__(self, model: keras.Model) -> np.ndarray:
        with self._lock:
            if self._fn is None:
                self._fn = self._build()
            values = self._fn() if self._variables else np.zeros(0)
        return np.append(values, _optimizer_step(model))

    def _build(self) -> Callable[[], Any]:
        backend = keras.backend.backend()
        if backend != "tensorflow":
            from camwidget.engines import backends

            compute = backends.autodiff(backend).fingerprint(self._variables, _SAMPLES)
            return compute
        handles = [v.value for v in self._variables]

        def fingerprint() -> tf.Tensor:
            flats = []
            for handle in handles:
                flat = tf.reshape(handle, [-1])
                size = flat.shape[0]
                if size is not None and size > _SAMPLES:  # sample before the cast: no copy of a large kernel
                    flat = tf.gather(flat, np.linspace(0, size - 1, _SAMPLES).astype(np.int64))
                flats.append(tf.cast(flat, tf.float64))
            values = tf.concat(flats, 0)
            weights = tf.sin(tf.range(1, tf.shape(values)[0] + 1, dtype=tf.float64) * 0.7071)
            return tf.stack([tf.reduce_sum(values * weights), tf.reduce_sum(values)])

        # A concrete function, as the engine's passes: calling one never traces, so no "triggered tf.function
        # retracing" warning, which TensorFlow gives for a function made anew per model (by its code, here the
        # same for every model) when it is called through tf.function's dispatch.
        compiled = tf.function(fingerprint, autograph=False).get_concrete_function()
        return lambda: compiled().numpy()


def _numeric(variable: Any) -> bool:
    try:
        dtype = keras.backend.standardize_dtype(getattr(variable, "dtype", None))
    except (TypeError, ValueError):
        return False
    return dtype.startswith(("float", "int", "uint", "bfloat"))


def _optimizer_step(model: keras.Model) -> float:
    optimizer = getattr(model, "optimizer", None)
    iterations = getattr(optimizer, "iterations", None)
    if iterations is None:
        return 0.0
    deadline = time.monotonic() + _WAIT_FOR_DONATED_S
    while True:
        try:
            return float(np.asarray(iterations))
        except (TypeError, ValueError):
            return 0.0
        except RuntimeError as exc:  # JAX: a fit in another thread donated the step's array; it puts a new one back
            if "deleted" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.005)


class ModelWatch:
    """Tells, cheaply and thread-safely, whether the model changed: :meth:`check` returns
    (structure version, values version), each bumped when that part changed since the last check.
    Holds no reference to the model itself (only to its variables), so a cache of watches can be weak."""

    def __init__(self, model: keras.Model) -> None:
        self._lock = threading.Lock()
        self._signature = structure_signature(model)
        self._fingerprint = WeightsFingerprint(model)
        self._values = self._fingerprint(model)
        self.structure_version = 0
        self.values_version = 0

    def check(self, model: keras.Model) -> tuple[int, int]:
        """(structure version, values version) of `model` now (the model this watch was made for)."""
        signature = structure_signature(model)
        with self._lock:
            if signature != self._signature:
                self._signature = signature
                self.structure_version += 1
                self.values_version += 1
                self._fingerprint = WeightsFingerprint(model)  # variables may have been added
                self._values = self._fingerprint(model)
                return self.structure_version, self.values_version
        values = self._fingerprint(model)
        with self._lock:
            if values.shape != self._values.shape or not np.array_equal(values, self._values):
                self._values = values
                self.values_version += 1
            return self.structure_version, self.values_version

    @property
    def invalidated(self) -> bool:
        """Whether :meth:`invalidate` was called since the last check."""
        return self._signature is None

    def invalidate(self) -> None:
        """Treat the model as changed in every way (what ``refresh()`` does)."""
        with self._lock:
            self._signature = None  # type: ignore[assignment]
