"""The network after a layer: the layers that run after it, and the function that runs only them.

A class switch in the explorer needs dy_c/dA for another class at the same layer, from the A it already has:
running the layers after the layer (the "tail") costs a fraction of a whole pass. Keras describes that part of
the graph only through private API, so the reading is :mod:`camwidget.keras_private`'s; here is what the
engines do with it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import keras
import numpy as np

from camwidget import keras_private
from camwidget.engines.layout import LayerInfo
from camwidget.errors import CAMError


def tail_function(model: keras.Model, path: str, output: int) -> Callable[[Any], Any] | None:
    """A function A -> output `output` that runs only the layers after layer `path`.

    Args:
        model: the model (functional or Sequential, nested too).
        path: the layer's path.
        output: the output's index.

    Returns:
        The function, or None where the model's structure does not show its graph (subclassed, or a layer
        used twice): then the engine runs a whole pass.
    """
    return keras_private.tail_function(model, path, output)


def gap_dense_kernel(model: keras.Model, info: LayerInfo) -> np.ndarray:
    """The (K, C) kernel of the Dense layer that follows `info` through global average pooling alone.

    CAM (Zhou et al. 2016) weights channel k for class c by w_kc, the Dense kernel: M_c = sum_k w_kc A_k, which
    is the class score's share of each position only where the score is a weighted sum of the channel means.

    Args:
        model: the model.
        info: the layer CAM maps.

    Returns:
        float32 (K, C).

    Raises:
        CAMError: the layers after `info` cannot be read, or are not pooling, one Dense and activations.
    """
    after = keras_private.layers_after(model, info.path, info.shape)
    if after is None:
        raise CAMError(
            f"CAM needs to read the layers after {info.path!r}, and this model's structure (subclassed, "
            "or a layer used twice) does not show them; use 'gradcam', which equals CAM where CAM applies"
        )
    L = keras.layers
    dense_at = [i for i, layer in enumerate(after) if isinstance(layer, L.Dense)]
    fits = (
        len(dense_at) == 1
        and isinstance(after[0], (L.GlobalAveragePooling1D, L.GlobalAveragePooling2D, L.GlobalAveragePooling3D))
        and all(isinstance(layer, (L.Dropout, L.Flatten)) for layer in after[1 : dense_at[0]])
        and all(isinstance(layer, (L.Activation, L.Softmax)) for layer in after[dense_at[0] + 1 :])
    )
    if not fits:
        kinds = ", ".join(layer.name for layer in after) or "no layers"
        raise CAMError(
            f"CAM (Zhou et al. 2016) needs layer {info.path!r} to be followed only by "
            f"GlobalAveragePooling2D and one Dense layer, so that each class score is a weighted sum of "
            f"the channel means; after it come: {kinds}. Use 'gradcam': it equals CAM on models "
            "where CAM applies, and works on every model."
        )
    dense = after[dense_at[0]]
    return np.asarray(keras.ops.convert_to_numpy(dense.kernel), np.float32).reshape(dense.kernel.shape[0], -1)
