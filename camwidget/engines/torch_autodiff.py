"""PyTorch: passes run eagerly (Keras's torch layers are torch modules), differentiated with
``torch.autograd.grad`` with respect to the eps alone, so no weight gradient is computed.

Not compiled: ``torch.compile`` guards on the Python objects it traced through, and the capture replaces the
chosen layer's ``call`` with a new function for each pass, so each pass would compile again (tens of seconds
for VGG16 on a CPU). A compiled capture needs the replacements made once per layer set and kept while its
compiled pass lives; that is the next step for torch's speed (an eager pass costs what an eager forward pass
does; a ``torch.compile``d forward pass is about 2x faster on a CPU).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import keras
import numpy as np
import torch

from camwidget.engines.autodiff_types import EpsShapes, Forward, ModelRef, Pass, Reduce
from camwidget.errors import CAMError

NAME = "torch"

# How long a pass is tried again while a training loop in another thread keeps updating the weights in place.
WAIT_FOR_WEIGHTS_S = 30.0


def _numpy(value: Any) -> Any:
    return value.detach().cpu().numpy() if isinstance(value, torch.Tensor) else value


def _tensors(x: Any, classes: np.ndarray | None, others: Sequence[np.ndarray]) -> tuple[Any, Any, list[Any]]:
    """On Keras's device; `x` may already be a tensor there (compute_cam of a batch on the GPU)."""
    convert = keras.ops.convert_to_tensor
    return convert(x), None if classes is None else convert(classes), [convert(o) for o in others]


def inject(out: Any, eps: Any) -> Any:
    """A layer's output as the rest of the pass sees it: out + eps (eps = 0, differentiated). The pass runs
    without autograd up to here (the layers before the first chosen one need no gradient), and with it from
    here on; grad mode is per thread in torch, so other threads are not affected."""
    torch.set_grad_enabled(True)
    return out + eps.to(out.dtype)


def gradient_pass(model_ref: ModelRef, forward: Forward, eps_shapes: EpsShapes, reduce: Reduce | None = None) -> Pass:
    """run(x, classes, others) -> (d sum(chosen) / d eps for each eps (None where chosen does not depend on
    it), aux), where forward(call, eps, x, classes, others) -> (chosen (N,), aux) and eps start at zero.
    With `reduce`, run returns reduce(grads, aux) instead, computed where the pass ran (the GPU), as NumPy
    (None where chosen does not depend on an eps)."""

    def once(x: Any, classes: Any, others: list[Any]) -> tuple[list[Any], Any]:
        model = model_ref()
        eps = [torch.zeros(shape, device=x.device, requires_grad=True) for shape in eps_shapes(x.shape[0])]
        with torch.no_grad():  # until inject() turns autograd on, at the first chosen layer
            chosen, aux = forward(lambda inputs: model(inputs, training=False), eps, x, classes, others)
        grads = list(torch.autograd.grad(chosen.sum(), eps, allow_unused=True))
        if reduce is not None:
            if any(g is None for g in grads):
                return None
            with torch.no_grad():
                return keras.tree.map_structure(_numpy, reduce(grads, aux))
        return [None if g is None else _numpy(g) for g in grads], keras.tree.map_structure(_numpy, aux)

    def run(
        x: Any, classes: np.ndarray, others: Sequence[np.ndarray], while_running: Callable[[], None] | None = None
    ) -> Any:
        tensors = _tensors(x, classes, others)
        deadline = time.monotonic() + WAIT_FOR_WEIGHTS_S
        while True:
            try:
                result = once(*tensors)
                if while_running is not None:
                    while_running()
                return result
            except RuntimeError as exc:  # a training step in another thread updated a weight in place meanwhile:
                if "modified by an inplace operation" not in str(exc):  # autograd refuses, nothing was made
                    raise
                if time.monotonic() > deadline:
                    raise CAMError(
                        f"the model's weights kept changing under every pass for {WAIT_FOR_WEIGHTS_S:.0f} s (a "
                        "training loop in another thread?); explain the model when it stops"
                    ) from exc
                time.sleep(0.005)

    return run


def tail_pass(model_ref: Callable[[], Any], forward: Callable[..., Any]) -> Callable[..., Any]:
    """run(a, classes) -> (d sum(chosen) / d a, aux) as NumPy, where forward(a, classes) -> (chosen (N,), aux)
    runs the layers after one layer (:func:`camwidget.keras_private.tail_function`) on the weights as they are."""

    def run(a: np.ndarray, classes: np.ndarray) -> Any:
        activations, classes, _ = _tensors(a, classes, [])
        activations.requires_grad_(True)
        with torch.enable_grad():
            chosen, aux = forward(activations, classes)
            (gradient,) = torch.autograd.grad(chosen.sum(), [activations], allow_unused=True)
        gradient = torch.zeros_like(activations) if gradient is None else gradient
        return _numpy(gradient), keras.tree.map_structure(_numpy, aux)

    return run


def forward_pass(model_ref: Callable[[], Any], forward: Callable[..., Any]) -> Callable[..., Any]:
    """run(x, others) -> forward(call, x, others) as NumPy, without autograd."""

    def run(x: np.ndarray, others: Sequence[np.ndarray]) -> Any:
        model = model_ref()
        x, _, others = _tensors(x, None, others)
        with torch.no_grad():
            value = forward(lambda inputs: model(inputs, training=False), x, others)
        return keras.tree.map_structure(_numpy, value)

    return run


def dry_call(model: Any, attempt: Callable[[Callable[[Any], Any]], Any]) -> Any:
    """attempt(call), where call(inputs) runs the model eagerly."""
    with torch.no_grad():
        return attempt(lambda inputs: model(inputs, training=False))


def fingerprint(variables: Sequence[Any], samples: int) -> Callable[[], np.ndarray]:
    """() -> (2,) a weighted and a plain sum over `samples` evenly spread values of each variable."""
    picks = [
        torch.from_numpy(
            np.linspace(0, int(np.prod(v.shape)) - 1, min(samples, int(np.prod(v.shape)))).astype(np.int64)
        )
        for v in variables
    ]

    def compute() -> np.ndarray:
        with torch.no_grad():
            parts = [v.value.reshape(-1)[p.to(v.value.device)].double() for v, p in zip(variables, picks)]
            flat = torch.cat(parts) if parts else torch.zeros(0, dtype=torch.float64)
            weights = torch.sin(torch.arange(1, flat.shape[0] + 1, dtype=torch.float64, device=flat.device) * 0.7071)
            return np.array([float((flat * weights).sum()), float(flat.sum())])

    return compute
