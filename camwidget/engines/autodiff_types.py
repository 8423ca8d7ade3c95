"""The interface the two autodiff modules share: :mod:`camwidget.engines.jax_autodiff` and
:mod:`camwidget.engines.torch_autodiff` each write ``gradient_pass`` and ``tail_pass`` over these types, and the
portable engine calls whichever its backend has."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

ModelRef = Callable[[], Any]  # the model, from a weak reference: a compiled pass must not keep it alive
Forward = Callable[..., Any]  # forward(call, eps, x, classes, others) -> (chosen scores (N,), aux)
EpsShapes = Callable[[int], list[tuple[int, ...]]]  # batch size -> the shapes of the zero eps added to each layer
Reduce = Callable[[list[Any], Any], Any]  # reduce(grads, aux): what leaves the device instead of both
Pass = Callable[..., Any]  # run(x, classes, others, while_running=None)
