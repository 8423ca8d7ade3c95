"""JAX: passes compiled with ``jax.jit``, differentiated with ``jax.grad``.

The model runs through ``model.stateless_call`` with its variables' current values as arguments, so a
compiled pass never bakes in weights: after ``fit`` or ``set_weights`` it computes with the new ones, and
it is traced again only for a new input shape. The layers' ``call`` is replaced only while JAX traces.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from .. import internals

NAME = "jax"


def _values(model: Any) -> tuple[list[Any], list[Any]]:
    return [v.value for v in model.trainable_variables], [v.value for v in model.non_trainable_variables]


def _caller(model: Any, trainable: list[Any], non_trainable: list[Any]) -> Callable[[Any], Any]:
    kwargs = internals.inference_kwargs(model)  # stateless_call passes them to call() as they are

    def call(inputs: Any) -> Any:
        outputs, _ = model.stateless_call(trainable, non_trainable, inputs, **kwargs)
        return outputs

    return call


def gradient_pass(model_ref: Callable[[], Any], forward: Callable[..., Any],
                  eps_shapes: Callable[[int], list[tuple[int, ...]]]) -> Callable[..., Any]:  # fmt: skip
    """run(x, classes, others) -> (d sum(chosen) / d eps for each eps, aux), where
    forward(call, eps, x, classes, others) -> (chosen (N,), aux) and eps start at zero."""

    def objective(eps: list[Any], trainable: list[Any], non_trainable: list[Any], x: Any, classes: Any,
                  others: list[Any]) -> tuple[Any, Any]:  # fmt: skip
        chosen, aux = forward(_caller(model_ref(), trainable, non_trainable), eps, x, classes, others)
        return jnp.sum(chosen), aux

    @jax.jit
    def compiled(trainable: list[Any], non_trainable: list[Any], x: Any, classes: Any, others: list[Any]) -> Any:
        eps = [jnp.zeros(shape, jnp.float32) for shape in eps_shapes(x.shape[0])]
        return jax.grad(objective, has_aux=True)(eps, trainable, non_trainable, x, classes, others)

    def run(x: np.ndarray, classes: np.ndarray, others: Sequence[np.ndarray]) -> tuple[list[np.ndarray], Any]:
        grads, aux = compiled(*_values(model_ref()), x, classes, list(others))
        return [np.asarray(g) for g in grads], jax.tree.map(np.asarray, aux)

    return run


def forward_pass(model_ref: Callable[[], Any], forward: Callable[..., Any]) -> Callable[..., Any]:
    """run(x, others) -> forward(call, x, others) as NumPy, compiled."""

    @jax.jit
    def compiled(trainable: list[Any], non_trainable: list[Any], x: Any, others: list[Any]) -> Any:
        return forward(_caller(model_ref(), trainable, non_trainable), x, others)

    def run(x: np.ndarray, others: Sequence[np.ndarray]) -> Any:
        return jax.tree.map(np.asarray, compiled(*_values(model_ref()), x, list(others)))

    return run


def fingerprint(variables: Sequence[Any], samples: int) -> Callable[[], np.ndarray]:
    """() -> (2,) a weighted and a plain sum over `samples` evenly spread values of each variable."""
    picks = [np.linspace(0, int(np.prod(v.shape)) - 1, min(samples, int(np.prod(v.shape)))).astype(np.int32)
             for v in variables]  # fmt: skip

    @jax.jit
    def compiled(values: list[Any]) -> Any:
        flat = jnp.concatenate(
            [jnp.ravel(v)[p].astype(jnp.float32) for v, p in zip(values, picks)] or [jnp.zeros(0, jnp.float32)]
        )
        weights = jnp.sin(jnp.arange(1, flat.shape[0] + 1, dtype=jnp.float32) * 0.7071)
        return jnp.stack([jnp.sum(flat * weights), jnp.sum(flat)])

    return lambda: np.asarray(compiled([v.value for v in variables]), np.float64)
