"""camwidget: where is my Keras CNN looking? Grad-CAM for any Keras model, and a live notebook explorer.

    import camwidget as cw
    cw.compute_cam(model, images)          # (N, h, w) maps
    cw.CAMExplorer(model, "cat.jpg")       # the live explorer

Importing this package is quiet and cheap: TensorFlow is imported on first use of a name below.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from camwidget.version import __version__

__all__ = [
    "CAMExplorer",
    "Explainer",
    "compute_cam",
    "spatial_layers",
    "default_layer",
    "overlay",
    "METHODS",
    "CAMError",
    "ImageError",
    "quiet_tensorflow",
    "explain_many",
    "concepts",
    "audit",
    "Audit",
    "explain_on_ray",
    "Gallery",
    "metrics",
    "targets",
    "demo",
    "__version__",
]

_LAZY = {  # public name -> the module that defines it
    "compute_cam": "camwidget.api",
    "spatial_layers": "camwidget.api",
    "default_layer": "camwidget.api",
    "METHODS": "camwidget.methods",
    "overlay": "camwidget.render",
    "CAMExplorer": "camwidget.explorer.widget",
    "Explainer": "camwidget.explain",
    "CAMError": "camwidget.errors",
    "ImageError": "camwidget.errors",
    "quiet_tensorflow": "camwidget.quiet",
    "explain_many": "camwidget.pipeline.batch",
    "concepts": "camwidget.dff",
    "audit": "camwidget.audits",
    "Audit": "camwidget.audits",
    "explain_on_ray": "camwidget.pipeline.on_ray",
    "Gallery": "camwidget.explorer.gallery",
}
_SUBMODULES = (
    "metrics",
    "targets",
    "demo",
)  # cw.metrics.deletion(...), cw.targets.Region(...), cw.demo.sample_photos()

if TYPE_CHECKING:
    from camwidget import demo, metrics, targets
    from camwidget.api import compute_cam, default_layer, spatial_layers
    from camwidget.audits import Audit, audit
    from camwidget.dff import concepts
    from camwidget.errors import CAMError, ImageError
    from camwidget.explain import Explainer
    from camwidget.explorer.gallery import Gallery
    from camwidget.explorer.widget import CAMExplorer
    from camwidget.methods import METHODS
    from camwidget.pipeline.batch import explain_many
    from camwidget.pipeline.on_ray import explain_on_ray
    from camwidget.quiet import quiet_tensorflow
    from camwidget.render import overlay


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:
        return importlib.import_module(f"camwidget.{name}")
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'camwidget' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(list(globals()) + list(_LAZY) + list(_SUBMODULES))
