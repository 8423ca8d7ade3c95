"""Engines: compiled passes over a Keras model (activations, gradients, class scores) for each backend.

The package's face: modules outside ``engines/`` import engine names from here, never from its modules.
"""

from camwidget.engines.adapter import LayerInfo, MapGeometry, ModelLayout
from camwidget.engines.engine import (
    SCORES,
    CAMEngine,
    Capture,
    LayerCapture,
    MapsCapture,
    ModelChanged,
    class_vector,
    engine_for,
    is_per_position,
    num_classes,
)

__all__ = [
    "SCORES",
    "CAMEngine",
    "Capture",
    "LayerCapture",
    "LayerInfo",
    "MapGeometry",
    "MapsCapture",
    "ModelChanged",
    "ModelLayout",
    "class_vector",
    "engine_for",
    "is_per_position",
    "num_classes",
]
