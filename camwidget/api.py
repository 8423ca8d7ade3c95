"""The functions people call: :func:`spatial_layers` and :func:`compute_cam`."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import keras
import numpy as np

from camwidget.engines import engine_for
from camwidget.explain import Explainer, Options
from camwidget.explain.pictures import are_pictures, input_rank, pictures_batch
from camwidget.inputs.feed import make_feed
from camwidget.inputs.images import device_batch, model_batch
from camwidget.methods import method_name


def spatial_layers(model: keras.Model, sample: Any = None) -> list[str]:
    """Every layer whose output reads as a map and on which the model's output depends, in forward order.

    A map layer is (N, h, w, C) in an image model, tokens (N, k + h*w, C) in a vision transformer, (N, L, C) in
    a model of 1-D signals, (N, D, H, W, C) in a model of volumes or clips.

    Args:
        model: any Keras 3 model (Functional, Sequential, subclassed, nested).
        sample: one input or a batch in the model's input space; needed only when the model does not know its
            input size.

    Returns:
        The layers' names; layers inside nested models by path ("vgg16/block5_conv3").

    Raises:
        CAMError: the model has no map layer, or its input size is unknown and no sample is given.
    """
    engine = engine_for(model)
    engine.sync()
    shape = None if sample is None else model_batch(sample, "sample", rank=input_rank(model)).shape[1:]
    return engine.layout(shape).spatial_paths()


def default_layer(model: keras.Model, sample: Any = None) -> str:
    """The layer compute_cam uses when none is given.

    Args:
        model: any Keras 3 model.
        sample: as :func:`spatial_layers` takes it.

    Returns:
        The last map layer that computes features (in a vision transformer, the last token layer before its
        last attention layer), by path.

    Raises:
        CAMError: as :func:`spatial_layers`.
    """
    engine = engine_for(model)
    engine.sync()
    shape = None if sample is None else model_batch(sample, "sample", rank=input_rank(model)).shape[1:]
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
    method_options: Mapping[str, Any] | None = None,
    target: Callable[[Any], Any] | None = None,
    grid: tuple[int, int] | None = None,
    input: str | int | None = None,
    other_inputs: Any = None,
    leading_tokens: int | None = None,
) -> np.ndarray:
    """Class activation maps of a model for images: exact, on every kind of Keras 3 model and backend.

    Grad-CAM (the default) is L = ReLU(sum_k alpha_k A^k) with alpha_k = mean over positions of dy_c/dA^k:
    A the layer's activations, y_c the class score (the logit before a final softmax under score="auto").

    Args:
        model: any Keras 3 model (Functional, Sequential, subclassed, nested; TensorFlow, JAX or torch).
        images: (N, H, W, C) or one (H, W, C), in the model's input space unless `preprocess` is given (NumPy,
            or the backend's tensor: a jax.Array or torch tensor on the GPU stays there, and with a gradient
            method only the maps come back to the host); or picture files (paths, file bytes, PIL images, or a
            list of them), read as the explorer reads them, resized to the model's input size and preprocessed
            by `preprocess` (a function of RGB 0-255), or by the detected keras.applications family when
            `preprocess` is None.
        layer: a name or path from :func:`spatial_layers`; None takes the last spatial feature layer.
        class_index: None (each image's top class), an int (every image), or one int per image.
        method: a name from camwidget.METHODS ("gradcam", "gradcam++", "hirescam", "xgradcam", "layercam",
            "scorecam", "sscam", "iscam", "ablation-cam", "eigencam", "cam", "guided-gradcam", ...;
            docs/methods.md lists them all), or one with its settings written in, "sscam(samples=4)".
        score: "auto" differentiates the logits when the output ends in a softmax (or sigmoid), "probability"
            the output as it is, "rest" the logit plus the log-probability (z_c + log p_c, Shapley-CAM's ReST).
        preprocess: a function of the images (RGB 0-255) giving the model's input; None: none for arrays, the
            detected family's for picture files.
        normalize: ReLU, then each map divided by its max (an all-zero map stays zero); False returns the raw
            signed map.
        output: name or index, for models with several outputs.
        eigen_smooth: the first principal component of the method's per-channel terms instead of their sum.
        aug_smooth: the mean of the normalised maps of 6 augmented copies (flipped or not, intensity x0.9, x1,
            x1.1), each mapped back; costs 6 passes (7 when the top class must be found first). With
            normalize=False that mean is returned as it is (it is non-negative: each copy was normalised).
        max_channels: Score-CAM and its kin use at most this many channels.
        method_options: the method's settings as a dict (e.g. {"gamma": 0.5} for "finer-cam"); each is checked
            and a bad one refused naming its valid range (camwidget.METHODS[name].options lists them).
        target: instead of a class, any function of the output (its logits under score="auto") returning one
            score per image, (N,); see :mod:`camwidget.targets` (Unit, Region, Box, ClassScore). Any output
            shape.
        grid: (rows, columns) of a token layer's patches, where the grid is not found from the token count; a
            grid turned on its side against the picture, or one that leaves more than 8 tokens before it, is
            refused naming the grid that fits, unless leading_tokens= says so.
        input: for a model with several inputs, the one the images go to (a name or index).
        other_inputs: the other inputs' values (a dict by name; one item or a batch of one is shared by every
            image, N rows go one per image).
        leading_tokens: how many tokens come before a token layer's patch grid (class, distillation, register
            tokens); alone: the grid of the picture's aspect after that many tokens.

    Returns:
        float32 maps (N, h, w) at the layer's own resolution (one image: (1, h, w)), in [0, 1] when normalised;
        at the input's resolution for "guided-gradcam". For a 1-D layer (N, L, C) of a model of signals the
        maps are (N, L); for a volume or clip layer (N, D, H, W, C), (N, D, H, W); for a vision transformer's
        token layer (N, k + h*w, C), (N, h, w) on its patch grid, found from the token count and the image's
        shape (the fewest leading tokens k that leave a grid of the image's aspect), or given as grid=(h, w).

    Raises:
        CAMError: a layer, output, class, method or option that cannot be right, with what would be (a ValueError).
        TypeError: an argument of the wrong kind (class_index not an int, preprocess not a function, ...).
    """
    if method_options is not None:
        method = method_name(method, method_options)
    options = Options(method, score, eigen_smooth, aug_smooth, max_channels, normalize).checked()
    feed = make_feed(model, input, other_inputs)
    values_checked = True
    if are_pictures(images):
        batch = pictures_batch(model, images, preprocess, feed)
        preprocess = None
    else:
        rank = input_rank(model, feed)
        if preprocess is None:  # its values are checked once, where they are read: in the pass, or on the host
            batch = device_batch(images, rank)
            batch = model_batch(images, rank=rank, check_values=False) if batch is None else batch
            values_checked = False
        else:
            batch = model_batch(images, rank=rank)
    if preprocess is not None:
        if not callable(preprocess):
            raise TypeError(f"preprocess must be a function of the images, not {type(preprocess).__name__}")
        batch = model_batch(
            preprocess(batch.copy()), "images after preprocess", single_allowed=False, rank=batch.ndim - 1
        )
    explainer = Explainer(
        model,
        layer=layer,
        output=output,
        options=options,
        target=target,
        class_index=class_index,
        grid=grid,
        feed=feed,
        leading_tokens=leading_tokens,
    )
    return explainer.explain(batch, values_checked=values_checked)
