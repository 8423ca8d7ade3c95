"""Which Keras backend runs the model, and the small part of camwidget that depends on it.

TensorFlow (the default) runs through :mod:`camwidget.engines.tensorflow`: traced ``tf.function`` passes and a
``GradientTape``, a tail pass for class switches, and guided backpropagation (TensorFlow only). JAX and
PyTorch run through :mod:`camwidget.engines.portable`, written in ``keras.ops``, with their own tail pass;
all it needs from the backend is how to compile a pass and differentiate it, one small module each
(:mod:`.jax_autodiff`, :mod:`.torch_autodiff`). The capture needs no tape: the chosen layer returns
``output + eps`` and the score is differentiated with respect to ``eps`` at zero, which is dy/dA. Methods,
render, session and widget never know which backend runs.

The backend is Keras's: chosen by ``KERAS_BACKEND`` before Keras is imported.
"""

from __future__ import annotations

import os
import sys
import weakref
from typing import Any

from camwidget import keras_private
from camwidget.errors import CAMError

BACKENDS = ("tensorflow", "jax", "torch")


def active() -> str:
    """The backend Keras runs on in this process."""
    import keras

    return keras.backend.backend()


# A model's variables are made once, under one backend: what of_model found is kept (reading model.variables
# walks every layer, and runs before every compute_cam).
_made_under: weakref.WeakKeyDictionary[Any, str] = weakref.WeakKeyDictionary()


def of_model(model: Any) -> str | None:
    """The backend a model's variables were made under, told by the type of the values they hold (None for a
    model without variables, or with none holding a value now)."""
    try:
        known = _made_under.get(model)
    except TypeError:  # not weakly referable: not a Keras model
        known = None
    if known is not None:
        return known
    roots = {"tensorflow": "tensorflow", "jax": "jax", "jaxlib": "jax", "torch": "torch"}
    for variable in getattr(model, "variables", None) or []:
        value = keras_private.held_value(variable)
        name = roots.get(type(value).__module__.split(".")[0]) if value is not None else None
        if name is not None:
            try:
                _made_under[model] = name
            except TypeError:
                pass
            return name
    return None


def check(model: Any) -> str:
    """The active backend, after checking that the model and ``KERAS_BACKEND`` agree with it."""
    running = active()
    wanted = os.environ.get("KERAS_BACKEND")
    if wanted and wanted != running and "keras" in sys.modules:
        raise CAMError(
            f"KERAS_BACKEND is {wanted!r}, but Keras was imported earlier and runs on {running!r}: the backend is "
            f"chosen once, when Keras is imported. Set KERAS_BACKEND={wanted} before the first import of keras "
            "(or camwidget) - the first cell of the notebook, or restart the kernel - or unset it to keep "
            f"{running!r}"
        )
    made = of_model(model)
    if made is not None and made != running:
        raise CAMError(
            f"this model was built under the {made!r} backend, but Keras now runs on {running!r} (after "
            f"keras.config.set_backend?): its weights are {made} variables that {running} cannot use. Save it "
            f"(model.save('model.keras')) and load it again under {running!r}, or build it again after the switch"
        )
    return running


def autodiff(name: str) -> Any:
    """The module that compiles and differentiates passes under backend `name` (JAX or torch)."""
    if name == "jax":
        from camwidget.engines import jax_autodiff

        return jax_autodiff
    if name == "torch":
        from camwidget.engines import torch_autodiff

        return torch_autodiff
    raise CAMError(f"camwidget runs on the tensorflow, jax and torch backends of Keras, not {name!r}")


def needs_tensorflow(what: str, name: str) -> CAMError:
    """The error for a part of camwidget that runs on TensorFlow only."""
    return CAMError(
        f"{what} needs the TensorFlow backend, and Keras runs on {name!r} here; use one of the gradient methods "
        "('gradcam', 'gradcam++', 'hirescam', 'xgradcam', 'layercam'), 'eigencam', 'scorecam' or 'cam', or "
        "run with KERAS_BACKEND=tensorflow"
    )
