"""camwidget: where is my Keras CNN looking? Grad-CAM for any Keras model, and a live notebook explorer.

    import camwidget as cw
    cw.compute_cam(model, images)          # (N, h, w) maps
    cw.CAMExplorer(model, "cat.jpg")       # the live explorer

Importing this package is quiet and cheap: TensorFlow is imported on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["CAMExplorer", "Explainer", "compute_cam", "spatial_layers", "default_layer", "overlay", "METHODS", "CAMError", "ImageError",
           "quiet_tensorflow", "explain_many", "Gallery", "__version__"]

_LAZY = {
    "compute_cam": "api",
    "spatial_layers": "api",
    "default_layer": "api",
    "METHODS": "methods",
    "overlay": "render",
    "CAMExplorer": "widget",
    "Explainer": "explain",
    "CAMError": "errors",
    "ImageError": "errors",
    "quiet_tensorflow": "quiet",
    "explain_many": "batch",
    "Gallery": "gallery",
}

if TYPE_CHECKING:
    from .errors import CAMError, ImageError
    from .api import compute_cam, default_layer, spatial_layers
    from .explain import Explainer
    from .quiet import quiet_tensorflow
    from .methods import METHODS
    from .render import overlay
    from .widget import CAMExplorer
    from .batch import explain_many
    from .gallery import Gallery


_SUBMODULES = ("metrics", "targets")  # cw.metrics.deletion(...), cw.targets.Region(...)


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:
        return importlib.import_module(f".{name}", __name__)
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'camwidget' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(list(globals()) + list(_LAZY) + list(_SUBMODULES))
