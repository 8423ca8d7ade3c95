"""Engines: compiled passes over a Keras model (activations, gradients, class scores) for each backend.

The package's face: modules outside ``engines/`` import engine names from here, never from its modules.
:class:`Engine` (``base``) declares what an engine does; :class:`TensorFlowEngine` (``tensorflow``, a
GradientTape) and :class:`PortableEngine` (``portable``, JAX and torch in keras.ops) are its siblings;
:func:`engine_for` picks one. Inside: ``layout`` (what a dry run learns) with each engine's dry run
(``tensorflow_layout``, ``portable_layout``), ``geometry`` (how an output reads as a map), ``capture`` (reading a
layer's output during a pass), ``scores`` (class scores, once in keras.ops), ``tail`` (the layers after a
layer), ``model_watch`` (the model-change look), ``backends`` and the autodiff modules.
"""

from __future__ import annotations

import weakref

import keras

from camwidget.engines import backends
from camwidget.engines.base import Capture, Engine, LayerCapture, MapsCapture, ModelChanged
from camwidget.engines.geometry import MapGeometry
from camwidget.engines.layout import LayerInfo, ModelLayout
from camwidget.engines.portable import PortableEngine
from camwidget.engines.scores import SCORES, class_vector, is_per_position, num_classes
from camwidget.engines.tensorflow import TensorFlowEngine

CAMEngine = Engine  # the name methods, metrics and explain type their engine with: any engine

__all__ = [
    "SCORES",
    "CAMEngine",
    "Capture",
    "Engine",
    "LayerCapture",
    "LayerInfo",
    "MapGeometry",
    "MapsCapture",
    "ModelChanged",
    "ModelLayout",
    "PortableEngine",
    "TensorFlowEngine",
    "class_vector",
    "engine_for",
    "is_per_position",
    "num_classes",
]

_engines: weakref.WeakKeyDictionary[keras.Model, Engine] = weakref.WeakKeyDictionary()


def engine_for(model: keras.Model) -> Engine:
    """The engine of `model`, made once and freed with the model.

    Args:
        model: a Keras 3 model, on the backend Keras runs now.

    Returns:
        Its :class:`TensorFlowEngine`, or its :class:`PortableEngine` under JAX or torch.

    Raises:
        TypeError: `model` is not a Keras 3 model (a Keras 2 one says how to convert it).
        CAMError: the model was made under another backend than Keras's current one.
    """
    if not isinstance(model, keras.Model):
        kind = type(model)
        if kind.__module__.startswith("keras.") and hasattr(model, "layers"):
            backends.check(model)  # a Keras 3 model from before keras.config.set_backend: says so
        if kind.__module__.split(".")[0] in ("tf_keras", "keras") and hasattr(model, "layers"):
            raise TypeError(
                f"model is a Keras 2 model ({kind.__module__}.{kind.__name__}: tf_keras, as "
                "TF_USE_LEGACY_KERAS=1 gives), and camwidget reads Keras 3 models. Convert it once: "
                "model.save('model.h5') where it was made, then model = keras.models.load_model('model.h5') "
                "with Keras 3 (no TF_USE_LEGACY_KERAS)"
            )
        raise TypeError(
            f"model must be a Keras 3 model (keras.Model, Sequential or a subclass), not {type(model).__name__}"
        )
    backend = backends.check(model)
    engine = _engines.get(model)
    if engine is None:
        if backend == "tensorflow":
            engine = TensorFlowEngine(model)
        else:
            engine = PortableEngine(model, backend)
        _engines[model] = engine
    return engine
