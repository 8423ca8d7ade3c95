"""What to explain and the one path that explains it: the core every surface asks.

    >>> explainer = Explainer(model, layer="block5_conv3", method="gradcam++")
    >>> maps = explainer.explain(images, class_index=281)      # what compute_cam returns
    >>> maps.dtype, maps.ndim, len(maps) == len(images)
    (dtype('float32'), 3, True)

(`model` a keras.applications.VGG16, or any model with a layer of that name; `images` a batch in its input
space, as compute_cam takes them.)

- :mod:`camwidget.explain.request`: :class:`Request` (layer, output, target, :class:`Options`, token grid,
  several inputs), one frozen value checked once, with every message about a bad request.
- :mod:`camwidget.explain.explainer`: :class:`Explainer`, the only thing that turns a request into maps
  (capture -> method -> normalise), with the target check and the model-changed retry; compute_cam, the
  explorer's session, explain_many, the Gallery, the metrics and the audit all ask it.
"""

from camwidget.explain.explainer import AUGMENTATIONS, Explainer
from camwidget.explain.request import Options, Request

__all__ = ["AUGMENTATIONS", "Explainer", "Options", "Request"]
