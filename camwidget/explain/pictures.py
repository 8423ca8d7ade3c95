"""Pictures as a request's inputs: files, bytes or PIL images read and prepared for the model as the explorer
prepares them, and the rank of one input item (what compute_cam, concepts and the audit share)."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import keras
import numpy as np
from PIL import Image as PILImage

from camwidget.engines import engine_for
from camwidget.errors import ImageError
from camwidget.inputs import preprocess as preprocessing
from camwidget.inputs.feed import Feed
from camwidget.inputs.images import load_pictures, model_batch
from camwidget.limits import MAX_SIDE


def input_rank(model: keras.Model, feed: Feed | None = None) -> int:
    """The rank of one input item: 3 for images (H, W, C), 2 for signals, 4 for volumes; 3 where unknown."""
    shape = engine_for(model).expected_input_shape(feed)
    return len(shape) if shape else 3


def are_pictures(images: Any) -> bool:
    """Files, file bytes or PIL images (one, or a list), rather than arrays in the model's input space."""
    kinds = (str, os.PathLike, bytes, PILImage.Image)
    if isinstance(images, kinds):
        return True
    return isinstance(images, (list, tuple)) and len(images) > 0 and all(isinstance(im, kinds) for im in images)


def pictures_batch(
    model: keras.Model, images: Any, preprocess: Callable[[np.ndarray], np.ndarray] | None, feed: Feed | None = None
) -> np.ndarray:
    """Pictures read as the explorer reads them (upright, 8-bit RGB), resized to the model's input size and
    preprocessed: by `preprocess` (of float32 RGB 0-255), else by the detected keras.applications family.
    A model that takes any size sees them at most MAX_SIDE pixels on their longer side, as in the explorer."""
    pictures = [p.pixels for p in load_pictures(images)]
    expected = engine_for(model).expected_input_shape(feed) or (None, None, 3)
    steps = preprocessing.resolve(model, preprocess)
    inputs = [preprocessing.model_input(p, expected, MAX_SIDE, steps.fn)[0] for p in pictures]
    if len({x.shape for x in inputs}) > 1:
        raise ImageError(
            "the pictures have different sizes and the model takes any size, so they cannot form one batch; "
            "call compute_cam once per picture, or resize them to one size"
        )
    return model_batch(np.concatenate(inputs), "images after preprocess", single_allowed=False)
