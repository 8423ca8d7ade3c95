"""JAX: passes compiled with ``jax.jit``, differentiated with ``jax.grad``.

The model runs through ``model.stateless_call`` with its variables' current values as arguments, so a
compiled pass never bakes in weights: after ``fit`` or ``set_weights`` it computes with the new ones, and
it is traced again only for a new input shape. The layers' ``call`` is replaced only while JAX traces.
"""

from __future__ import annotations

import time
import weakref
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import keras
import numpy as np

from camwidget import keras_private
from camwidget.engines.autodiff_types import EpsShapes, Forward, ModelRef, Pass, Reduce
from camwidget.errors import CAMError

NAME = "jax"


# How long a pass waits for weights that a fit / predict in another thread has taken out of the model.
WAIT_FOR_WEIGHTS_S = 30.0


def current_values(variables: Sequence[Any]) -> list[Any]:
    """The variables' values now. While Keras's JAX trainer runs fit, predict or evaluate (in another thread)
    the model's variables hold no values; wait until it puts them back, or say so."""
    deadline = time.monotonic() + WAIT_FOR_WEIGHTS_S
    while True:
        values = [keras_private.held_value(v) for v in variables]  # each read once: the array, or None if taken
        if all(value is not None for value in values):
            return values
        if time.monotonic() > deadline:
            raise CAMError(
                f"the model's weights have been held by a fit / predict / evaluate in another thread for "
                f"{WAIT_FOR_WEIGHTS_S:.0f} s (Keras's JAX trainer takes them out of the model while it runs); "
                "explain the model when it returns"
            )
        time.sleep(0.005)


def _retried(compute: Callable[[], Any]) -> Any:
    """compute() again while a fit in another thread donates (deletes) the weight arrays it was given:
    JAX refuses a deleted array before computing anything, so no result is ever made from one."""
    deadline = time.monotonic() + WAIT_FOR_WEIGHTS_S
    while True:
        try:
            return compute()
        except (RuntimeError, ValueError) as exc:  # jitted: RuntimeError; eager: ValueError
            if "deleted" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.005)


def _values(model: Any) -> tuple[list[Any], list[Any]]:
    trainable, non_trainable = keras_private.trainable_split(model)
    values = current_values(trainable + non_trainable)
    return values[: len(trainable)], values[len(trainable) :]


# The class vectors of recent passes, kept on the device: a NumPy argument would be copied to it on every call.
_CLASSES_ON_DEVICE: dict[bytes, Any] = {}


def _on_device(classes: np.ndarray) -> Any:
    """`classes` (N,) int32 as a jax.Array, the same one for the same values (most calls: every image's top)."""
    key = classes.tobytes()
    found = _CLASSES_ON_DEVICE.get(key)
    if found is None:
        if len(_CLASSES_ON_DEVICE) >= 16:
            _CLASSES_ON_DEVICE.pop(next(iter(_CLASSES_ON_DEVICE), b""), None)
        found = _CLASSES_ON_DEVICE[key] = jax.device_put(classes)
    return found


def _caller(model: Any, trainable: list[Any], non_trainable: list[Any]) -> Callable[[Any], Any]:
    kwargs = keras_private.inference_kwargs(model)  # stateless_call passes them to call() as they are

    def call(inputs: Any) -> Any:
        outputs, _ = model.stateless_call(trainable, non_trainable, inputs, **kwargs)
        return outputs

    return call


def inject(out: Any, eps: Any) -> Any:
    """A layer's output as the rest of the pass sees it: out + eps (eps = 0, differentiated)."""
    return out + eps.astype(out.dtype)


def gradient_pass(model_ref: ModelRef, forward: Forward, eps_shapes: EpsShapes, reduce: Reduce | None = None) -> Pass:
    """run(x, classes, others) -> (d sum(chosen) / d eps for each eps, aux), where
    forward(call, eps, x, classes, others) -> (chosen (N,), aux) and eps start at zero. With `reduce`, run
    returns reduce(grads, aux) instead, compiled into the same pass, so only its result leaves the device."""

    def objective(
        eps: list[Any], trainable: list[Any], non_trainable: list[Any], x: Any, classes: Any, others: list[Any]
    ) -> tuple[Any, Any]:
        chosen, aux = forward(_caller(model_ref(), trainable, non_trainable), eps, x, classes, others)
        return jnp.sum(chosen), aux

    @jax.jit
    def compiled(trainable: list[Any], non_trainable: list[Any], x: Any, classes: Any, others: list[Any]) -> Any:
        eps = [jnp.zeros(shape, jnp.float32) for shape in eps_shapes(x.shape[0])]
        grads, aux = jax.grad(objective, has_aux=True)(eps, trainable, non_trainable, x, classes, others)
        return (grads, aux) if reduce is None else reduce(grads, aux)

    def run(
        x: Any, classes: np.ndarray, others: Sequence[np.ndarray], while_running: Callable[[], None] | None = None
    ) -> Any:
        """`x`: NumPy, or a jax.Array already on the device (compute_cam of a batch on the GPU). The pass is
        dispatched, `while_running()` runs on the host meanwhile, then the results come back in one transfer."""
        classes = _on_device(np.asarray(classes, np.int32))
        result = _retried(lambda: compiled(*_values(model_ref()), x, classes, list(others)))
        if while_running is not None:
            while_running()
        return jax.device_get(result)

    return run


def tail_pass(model_ref: Callable[[], Any], forward: Callable[..., Any]) -> Callable[..., Any]:
    """run(a, classes) -> (d sum(chosen) / d a, aux) as NumPy, compiled, where forward(a, classes) ->
    (chosen (N,), aux) runs the layers after one layer (:func:`camwidget.keras_private.tail_function`). They run
    in a StatelessScope that maps each variable to its current value, passed as an argument: a compiled tail
    never bakes in weights, as the full pass's stateless_call does not."""

    @jax.jit
    def compiled(trainable: list[Any], non_trainable: list[Any], a: Any, classes: Any) -> Any:
        variables = keras_private.trainable_split(model_ref())
        mapping = list(zip(variables[0] + variables[1], trainable + non_trainable))

        def objective(a: Any) -> tuple[Any, Any]:
            with keras.StatelessScope(state_mapping=mapping):
                chosen, aux = forward(a, classes)
            return jnp.sum(chosen), aux

        return jax.grad(objective, has_aux=True)(a)

    def run(a: np.ndarray, classes: np.ndarray) -> Any:
        return jax.device_get(_retried(lambda: compiled(*_values(model_ref()), a, _on_device(classes))))

    return run


def forward_pass(model_ref: Callable[[], Any], forward: Callable[..., Any]) -> Callable[..., Any]:
    """run(x, others) -> forward(call, x, others) as NumPy, compiled."""

    @jax.jit
    def compiled(trainable: list[Any], non_trainable: list[Any], x: Any, others: list[Any]) -> Any:
        return forward(_caller(model_ref(), trainable, non_trainable), x, others)

    def run(x: np.ndarray, others: Sequence[np.ndarray]) -> Any:
        return jax.tree.map(np.asarray, _retried(lambda: compiled(*_values(model_ref()), x, list(others))))

    return run


def dry_call(model: Any, attempt: Callable[[Callable[[Any], Any]], Any]) -> Any:
    """attempt(call), where call(inputs) runs the model eagerly with its weights as they are now (see
    current_values); attempted again, from the start, where a fit in another thread took them meanwhile."""
    return _retried(lambda: attempt(_caller(model, *_values(model))))


def fingerprint(variables: Sequence[Any], samples: int) -> Callable[[], np.ndarray]:
    """() -> (2,) a weighted and a plain sum over `samples` evenly spread values of each variable.

    JAX arrays are immutable: a variable changes only by being given another array. So while every variable
    holds the very arrays it held last time (weak references: the old weights are not kept alive), the last
    sums are returned with no work on the device; only then are they computed again (predict and evaluate
    hand back new arrays of the same values, which the sums see as no change)."""
    picks = [
        np.linspace(0, int(np.prod(v.shape)) - 1, min(samples, int(np.prod(v.shape)))).astype(np.int32)
        for v in variables
    ]

    @jax.jit
    def compiled(values: list[Any]) -> Any:
        flat = jnp.concatenate(
            [jnp.ravel(v)[p].astype(jnp.float32) for v, p in zip(values, picks)] or [jnp.zeros(0, jnp.float32)]
        )
        weights = jnp.sin(jnp.arange(1, flat.shape[0] + 1, dtype=jnp.float32) * 0.7071)
        return jnp.stack([jnp.sum(flat * weights), jnp.sum(flat)])

    held: list[Any] = []
    last: list[np.ndarray] = []

    def once() -> np.ndarray:
        values = current_values(variables)
        if last and len(held) == len(values) and all(ref() is value for ref, value in zip(held, values)):
            return last[0]
        sums = np.asarray(compiled(values), np.float64)
        held[:], last[:] = [weakref.ref(value) for value in values], [sums]
        return sums

    return lambda: _retried(once)
