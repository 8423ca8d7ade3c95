"""Helpers for the demo notebooks: pretrained weights where they can be had, a clear stand-in where not,
and ImageNet class names that need no download."""

from __future__ import annotations

import os
import sys
import textwrap
from collections.abc import Callable
from dataclasses import dataclass

import keras
import numpy as np

from camwidget import notes
from camwidget.classes import imagenet_class_names
from camwidget.demo import loading


@dataclass
class LoadedModel:
    model: keras.Model
    pretrained: bool  # False: random weights, a stand-in
    message: str  # one sentence for the reader


def load_pretrained(
    build: Callable[..., keras.Model],
    weights_file: str | os.PathLike | None = None,
    stand_in_seed: int = 0,
    **kwargs: object,
) -> LoadedModel:
    """``build(...)`` (e.g. keras.applications.VGG16) with ImageNet weights: from `weights_file` when given,
    else Keras's own download. Where neither works (offline), the same architecture with random weights and
    a sentence that says so; never a traceback. The stand-in's weights are drawn with `stand_in_seed`
    (Keras's global seed is set to it), so a notebook shows the same predictions on every run.

    The weights go straight from the file into the model, one array at a time (see :mod:`camwidget.demo.loading`):
    VGG16 then peaks at about 1.2 GB instead of 2.8 GB, which is what lets it run on Binder.
    """
    keras.utils.set_random_seed(stand_in_seed)  # weights a build draws at once are the same on every run too
    try:
        path = os.fspath(weights_file) if weights_file else _download_imagenet_weights(build, kwargs)
    except Exception as exc:  # no network, or no known weights for this family
        return _stand_in(loading.build_unfilled(build, weights=None, **kwargs), exc, stand_in_seed)
    model = loading.build_unfilled(build, weights=None, **kwargs)
    try:
        if loading.unfilled_variables(model) and loading.is_legacy_h5(path):
            loading.fill_from_h5(model, path)  # the keras.applications layout: what get_file downloads
        else:
            loading.fill_with_initializers(model)
            model.load_weights(path)  # any other format Keras reads, at Keras's memory cost
    except Exception as exc:  # no such file, a file for another model, a format Keras cannot read
        return _stand_in(model, exc, stand_in_seed)
    where = f"from {weights_file}" if weights_file else "(ImageNet)"
    return LoadedModel(model, True, f"Loaded {model.name} with pretrained weights {where}.")


def _stand_in(model: keras.Model, exc: Exception, seed: int) -> LoadedModel:
    keras.utils.set_random_seed(seed)
    loading.fill_with_initializers(model)
    notes.mark(model)  # the explorer, its figures and the gallery say so too
    reason = textwrap.shorten(str(exc).splitlines()[0], 120) if str(exc) else type(exc).__name__
    return LoadedModel(
        model,
        False,
        f"Could not load pretrained weights ({reason}); using {model.name} with random weights instead, "
        "so predictions and maps below show how the tools work, not what a trained model sees.",
    )


def _download_imagenet_weights(build: Callable[..., keras.Model], kwargs: dict) -> str:
    """Keras's ImageNet weights file for a keras.applications family that names it (VGG16, VGG19)."""
    module = sys.modules.get(getattr(build, "__module__", ""), None)
    top = kwargs.get("include_top", True)
    origin = getattr(module, "WEIGHTS_PATH" if top else "WEIGHTS_PATH_NO_TOP", None)
    if origin is None:
        raise ValueError(f"no known ImageNet weights file for {getattr(build, '__name__', build)}; pass weights_file=")
    return keras.utils.get_file(origin.rsplit("/", 1)[-1], origin, cache_subdir="models")


def decode(
    probabilities: np.ndarray, top: int = 5, class_names: list[str] | None = None
) -> list[tuple[int, str, float]]:
    """(class index, name, probability) of the top classes of one image's output, best first."""
    names = class_names or (imagenet_class_names() if probabilities.shape[-1] == 1000 else None)
    order = np.argsort(-probabilities)[:top]
    return [(int(i), names[i] if names else f"class {i}", float(probabilities[i])) for i in order]


def sample_photos() -> dict[str, np.ndarray]:
    """Photos that ship with scikit-image (no download): a cat and a cup of coffee, RGB uint8."""
    from skimage import data

    from camwidget.inputs.images import NamedArray

    # named arrays: a list of them is listed by these names too, not as "image 0"
    return {
        name: NamedArray.of(pixels, name)
        for name, pixels in (("chelsea the cat", data.chelsea()), ("coffee", data.coffee()))
    }
