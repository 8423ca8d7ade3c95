"""From RGB pixels (0-255) to the model's input space.

A keras.applications model is recognised by its name, a nested base's name, or its layer names (a base
built with ``input_tensor=`` leaves no nested model behind), and gets that family's ``preprocess_input``.
VGG16 and ResNet50 use "caffe" mode (BGR, ImageNet mean subtracted); dividing by 255 instead, as many
recipes do, gives meaningless maps.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import cv2
import keras
import numpy as np

from camwidget.errors import ImageError
from camwidget.inputs.images import resize_to
from camwidget.keras_private import walk_layers

PixelsToInput = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class Preprocessing:
    fn: PixelsToInput  # float32 RGB 0-255 (N, H, W, 3) -> model input
    description: str  # for the status line


def _applications(module: str) -> PixelsToInput:
    def run(pixels: np.ndarray) -> np.ndarray:
        fn = getattr(keras.applications, module).preprocess_input
        return np.asarray(fn(np.array(pixels, dtype=np.float32, copy=True)), dtype=np.float32)

    return run


def _unchanged(pixels: np.ndarray) -> np.ndarray:
    return np.asarray(pixels, dtype=np.float32)


def _unit_range(pixels: np.ndarray) -> np.ndarray:
    return np.asarray(pixels, dtype=np.float32) / 255.0


# (pattern on a model's name, keras.applications module or None for "takes 0-255 as is", label)
_FAMILIES: list[tuple[str, str | None, str]] = [
    (r"^vgg1[69]", "vgg16", "VGG (caffe: BGR, ImageNet mean subtracted)"),
    (r"^resnet\d+v2", "resnet_v2", "ResNetV2 (scaled to -1..1)"),
    (r"^resnet\d+", "resnet", "ResNet (caffe: BGR, ImageNet mean subtracted)"),
    (r"^mobilenetv3|^mobilenet_?v3", None, "MobileNetV3 (rescales inside the model; 0-255 in)"),
    (r"^mobilenetv2", "mobilenet_v2", "MobileNetV2 (scaled to -1..1)"),
    (r"^mobilenet", "mobilenet", "MobileNet (scaled to -1..1)"),
    (r"^inception_v3", "inception_v3", "InceptionV3 (scaled to -1..1)"),
    (r"^inception_resnet_v2", "inception_resnet_v2", "InceptionResNetV2 (scaled to -1..1)"),
    (r"^xception", "xception", "Xception (scaled to -1..1)"),
    (r"^densenet", "densenet", "DenseNet (torch: 0-1, ImageNet mean and std)"),
    (r"^nasnet", "nasnet", "NASNet (scaled to -1..1)"),
    (r"^efficientnet|^convnext|^regnet", None, "EfficientNet/ConvNeXt/RegNet (rescale inside; 0-255 in)"),
]

# Layer names a keras.applications base leaves in a model that it was flattened into.
_SIGNATURES: list[tuple[set[str], str]] = [
    ({"block1_conv1", "block5_conv3", "block5_pool"}, "vgg16"),
    ({"conv1_conv", "conv5_block3_out", "post_relu"}, "resnet50v2"),
    ({"conv1_conv", "conv5_block3_out"}, "resnet50"),
    ({"Conv1", "block_16_project", "out_relu"}, "mobilenetv2"),
]


def detect_family(model: keras.Model) -> tuple[PixelsToInput, str] | None:
    """(preprocess_input, label) of the keras.applications family the model is built on, or None."""
    names = [model.name] + [layer.name for _, layer in walk_layers(model) if isinstance(layer, keras.Model)]
    layer_names = {layer.name for _, layer in walk_layers(model)}
    for sig, family in _SIGNATURES:
        if sig <= layer_names:
            names.append(family)
    for name in names:
        for pattern, module, label in _FAMILIES:
            if re.search(pattern, name.lower()):
                return (_applications(module) if module else _unchanged), label
    return None


def resolve(model: keras.Model, preprocess: PixelsToInput | str | None) -> Preprocessing:
    """The explorer's preprocessing: None detects, "none" feeds pixels unchanged, a callable is used as given."""
    if callable(preprocess):
        return Preprocessing(_checked(preprocess), f"your function {getattr(preprocess, '__name__', '')}".rstrip())
    if isinstance(preprocess, str):
        if preprocess.lower() == "none":
            return Preprocessing(_unchanged, "none (pixels 0-255 as given)")
        raise ValueError(f"preprocess must be None (detect), 'none', or a function of the pixels, not {preprocess!r}")
    if preprocess is not None:
        raise TypeError(f"preprocess must be None, 'none' or a function, not {type(preprocess).__name__}")
    found = detect_family(model)
    if found:
        fn, label = found
        return Preprocessing(fn, f"{label}, detected")
    if any(type(layer).__name__ in ("Rescaling", "Normalization") for _, layer in walk_layers(model)):
        return Preprocessing(_unchanged, "none detected; the model rescales itself, so pixels go in as 0-255")
    return Preprocessing(_unit_range, "none detected; pixels scaled to 0-1 (pass preprocess= to change)")


def _checked(fn: PixelsToInput) -> PixelsToInput:
    def run(pixels: np.ndarray) -> np.ndarray:
        out = fn(np.array(pixels, dtype=np.float32, copy=True))
        out = out.numpy() if hasattr(out, "numpy") else np.asarray(out)
        if out.shape[:-1] != pixels.shape[:-1]:
            raise ValueError(
                f"your preprocess function returned shape {out.shape} for pixels of shape {pixels.shape}; "
                "it must keep the batch, height and width"
            )
        return out.astype(np.float32)

    return run


Resized = tuple[tuple[int, int], tuple[int, int]]  # (from (h, w), to (h, w))


def model_input(
    pixels: np.ndarray, expected: tuple[int | None, ...], max_side: int, fn: PixelsToInput
) -> tuple[np.ndarray, Resized | None]:
    """One RGB uint8 picture -> a (1, H, W, C) batch the model takes, and how it was resized if it was for
    max_side: resized to the model's input size (a free side: at most `max_side` on the longer side, aspect
    kept), grayscale where the model takes one channel, then `fn`."""
    h, w, c = (tuple(expected) + (None, None, None))[:3]
    resized_from = None
    if h is None or w is None:
        ih, iw = pixels.shape[:2]
        scale = max_side / max(ih, iw)
        if scale < 1:
            fh, fw = max(1, round(ih * scale)), max(1, round(iw * scale))
            h, w = h or fh, w or fw
            resized_from = ((ih, iw), (h, w))
    resized = resize_to(pixels, h, w)
    if c == 1:
        resized = cv2.cvtColor(resized, cv2.COLOR_RGB2GRAY)[..., None]
    elif c not in (None, 3):
        raise ImageError(f"the model takes {c} channels; camwidget explains models of RGB (3) or grayscale (1) images")
    batch = fn(resized[None].astype(np.float32))
    if not np.isfinite(batch).all():
        raise ImageError("the preprocessing produced NaN or infinite values")
    return batch, resized_from
