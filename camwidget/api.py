"""The functions people call: :func:`spatial_layers` and :func:`compute_cam`."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import keras
import numpy as np

from .engine import SCORES, class_vector, engine_for, num_classes
from .errors import CAMError
from .images import model_batch
from .methods import MethodInputs, finite, get_method, method_maps, normalize_maps

# Test-time augmentations for aug_smooth: horizontal flip x intensity factors, as pytorch-grad-cam's
# ttach.Compose([HorizontalFlip(), Multiply([0.9, 1, 1.1])]).
AUGMENTATIONS = tuple((flip, factor) for flip in (False, True) for factor in (0.9, 1.0, 1.1))


def spatial_layers(model: keras.Model, sample: Any = None) -> list[str]:
    """Every layer whose output is (N, h, w, C) and on which the model's output depends, in forward order.

    Layers inside nested models are named by path ("vgg16/block5_conv3"). `sample` (one image or a batch,
    in the model's input space) is needed only when the model does not know its input size.
    """
    engine = engine_for(model)
    shape = None if sample is None else model_batch(sample, "sample").shape[1:]
    return engine.layout(shape).spatial_paths()


def default_layer(model: keras.Model, sample: Any = None) -> str:
    """The layer compute_cam uses when none is given: the last spatial feature layer larger than 1x1."""
    engine = engine_for(model)
    shape = None if sample is None else model_batch(sample, "sample").shape[1:]
    return engine.layout(shape).default_path()


def compute_cam(
    model: keras.Model,
    images: Any,
    *,
    layer: str | None = None,
    class_index: int | Sequence[int] | None = None,
    method: str = "gradcam",
    score: str = "auto",
    preprocess: Callable[[np.ndarray], np.ndarray] | None = None,
    normalize: bool = True,
    output: str | int | None = None,
    eigen_smooth: bool = False,
    aug_smooth: bool = False,
    max_channels: int | None = None,
) -> np.ndarray:
    """Class activation maps, float32 (N, h, w) at the layer's own resolution (one image: (1, h, w));
    at the input's resolution for "guided-gradcam".

    images: (N, H, W, C) or one (H, W, C), in the model's input space unless `preprocess` is given.
    layer: a name or path from :func:`spatial_layers`; None takes the last spatial feature layer.
    class_index: None (each image's top class), an int (every image), or one int per image.
    method: a name from camwidget.METHODS ("gradcam", "gradcam++", "hirescam", "xgradcam", "layercam",
    "scorecam", "eigencam", "cam", "guided-gradcam").
    score: "auto" differentiates the logits when the output ends in a softmax (or sigmoid), "probability"
    the output as it is. normalize: ReLU, then each map divided by its max (an all-zero map stays zero);
    False returns the raw signed map. output: name or index, for models with several outputs.
    eigen_smooth: the first principal component of the method's per-channel terms instead of their sum.
    aug_smooth: the mean of the normalised maps of 6 augmented copies (flipped or not, intensity x0.9, x1,
    x1.1), each mapped back; costs 6 passes (7 when the top class must be found first). With normalize=False
    that mean is returned as it is (it is non-negative: each copy was normalised). max_channels: Score-CAM uses at most this many channels.
    """
    if score not in SCORES:
        raise CAMError(f"score must be one of {', '.join(map(repr, SCORES))}, not {score!r}")
    if max_channels is not None and (isinstance(max_channels, bool) or not isinstance(max_channels, int) or max_channels < 1):
        raise CAMError(f"max_channels must be a positive int or None, not {max_channels!r}")
    cam_method = get_method(method)
    batch = model_batch(images)
    if preprocess is not None:
        if not callable(preprocess):
            raise TypeError(f"preprocess must be a function of the images, not {type(preprocess).__name__}")
        batch = model_batch(preprocess(batch.copy()), "images after preprocess", single_allowed=False)
    engine = engine_for(model)
    layout = engine.layout(batch.shape[1:])
    info = layout.resolve(layer)
    out = engine.output_index(layout, output)
    classes = class_vector(class_index, len(batch), num_classes(layout, out))

    def maps_of(x: np.ndarray, classes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        capture = engine.capture(x, info, classes, out, score)
        inputs = MethodInputs(capture, x, engine, info, layout, out, score, max_channels)
        return method_maps(cam_method, inputs, eigen_smooth), capture.class_index

    if not aug_smooth:
        maps, _ = maps_of(batch, classes)
        return normalize_maps(maps) if normalize else finite(maps)
    if (classes < 0).any():
        _, classes = maps_of(batch, classes)  # fix each image's class before augmenting
    total = 0.0
    for flip, factor in AUGMENTATIONS:
        x = (batch[:, :, ::-1] if flip else batch) * np.float32(factor)
        maps, _ = maps_of(np.ascontiguousarray(x), classes)
        maps = normalize_maps(maps)
        total = total + (maps[:, :, ::-1] if flip else maps)
    maps = (total / len(AUGMENTATIONS)).astype(np.float32)
    return normalize_maps(maps) if normalize else maps
