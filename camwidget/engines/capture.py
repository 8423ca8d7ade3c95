"""Read a layer's output during a pass without changing the model: :func:`capturing`.

Every kind of Keras model (functional, Sequential, subclassed, nested, loaded) runs its layers through
``layer.__call__ -> layer.call``. So a layer's output is read by replacing ``call`` on that one layer
object for the length of one pass, and putting it back in ``finally``. Building
``keras.Model(model.inputs, inner_layer.output)`` instead fails for nested and Sequential models.
"""

from __future__ import annotations

import contextlib
import functools
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import keras

from camwidget.inputs.feed import Feed

_patch_lock = threading.RLock()


@contextlib.contextmanager
def capturing(
    layers: dict[str, keras.layers.Layer],
    on_output: Callable[[str, Any], Any],
    *,
    on_input: Callable[[str, tuple[Any, ...]], None] | None = None,
    activations: dict[str, keras.layers.Layer] | None = None,
    on_activation: Callable[[str, Any], None] | None = None,
) -> Iterator[None]:
    """While inside, each given layer reports every output it computes *in this thread* to
    ``on_output(path, output)``; a value it returns other than None replaces the output (the eps of a
    tape-free capture). ``on_input(path, args)`` sees the arguments first. Each layer of `activations` reports
    what goes into its ``activation`` (the logits under a Dense(activation="softmax")) to ``on_activation``.

    Replaces ``call`` (and ``activation``) on the layer objects and restores them in ``finally``, so the model
    is unchanged after. Other threads that call the model meanwhile go through the replaced ``call`` too, but it
    reports only calls made by the thread (and the capture) that installed it: their tensors never reach
    ``on_output``. Captures are serialised by a lock, so two never patch the same layer at once.

    Args:
        layers: path -> layer, the layers whose outputs are read.
        on_output: called with (path, output) for each output; a non-None return replaces the output.
        on_input: called with (path, args) before each call of a layer of `layers`.
        activations: path -> layer whose ``activation`` input is read (the logits under it).
        on_activation: called with (path, the activation's input).

    Returns:
        A context manager; nothing is patched outside it.
    """
    patched: list[tuple[keras.layers.Layer, str, Any]] = []
    token = object()

    def mine() -> bool:
        return getattr(_active, "token", None) is token

    def patch(layer: keras.layers.Layer, attribute: str, replacement: Any) -> None:
        replacement.camwidget_capture = True  # (state.py ignores it)
        patched.append((layer, attribute, layer.__dict__.get(attribute, _MISSING)))
        object.__setattr__(layer, attribute, replacement)

    with _patch_lock:
        previous_token = getattr(_active, "token", None)
        try:
            for path, layer in layers.items():

                def reporting_call(*args: Any, _original=layer.call, _path=path, **kwargs: Any) -> Any:
                    if on_input is not None and mine():
                        on_input(_path, args)
                    output = _original(*args, **kwargs)
                    if mine():
                        replaced = on_output(_path, output)
                        if replaced is not None:
                            return replaced
                    return output

                patch(layer, "call", reporting_call)
            for path, layer in (activations or {}).items():
                # wraps: the stand-in has the activation's own name, so that a get_config() made meanwhile in
                # another thread (clone_model, save) still says "softmax"
                @functools.wraps(layer.activation)
                def reporting_activation(z: Any, _original=layer.activation, _path=path) -> Any:
                    if on_activation is not None and mine():
                        on_activation(_path, z)
                    return _original(z)

                reporting_activation.camwidget_original = layer.activation  # type: ignore[attr-defined]
                patch(layer, "activation", reporting_activation)
            _active.token = token
            yield
        finally:
            _active.token = previous_token
            for layer, attribute, previous in reversed(patched):
                if previous is _MISSING:
                    object.__delattr__(layer, attribute)
                else:
                    object.__setattr__(layer, attribute, previous)


_MISSING = object()
_active = threading.local()  # the capture this thread is running, if any


def call_model(model: keras.Model, x: Any, feed: Feed | None = None, others: Sequence[Any] = ()) -> list[Any]:
    """The model's outputs as a flat list, in inference mode; with a feed, `x` goes to its input among `others`."""
    return keras.tree.flatten(model(x if feed is None else feed.pack(x, others), training=False))
