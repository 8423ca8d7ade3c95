"""Class names: what each of the model's output classes is called on screen and in reports."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from importlib import resources

import numpy as np

from camwidget.errors import CAMError


def imagenet_class_names() -> list[str]:
    text = resources.files("camwidget").joinpath("data/imagenet_classes.json").read_text(encoding="utf-8")
    return [entry[1] for entry in json.loads(text)]


def resolve_class_names(class_names: Sequence[str] | Mapping[int, str] | None, n_classes: int) -> list[str]:
    """One display name per class: the given list or dict, ImageNet's for 1000 classes, else 'class i'."""
    names = [f"class {i}" for i in range(n_classes)]
    if class_names is None:
        return imagenet_class_names() if n_classes == 1000 else names
    if isinstance(class_names, Mapping):
        for key, name in class_names.items():
            if not isinstance(key, (int, np.integer)) or not 0 <= key < n_classes:
                raise CAMError(f"class_names has key {key!r}; keys must be class indices 0..{n_classes - 1}")
            names[int(key)] = str(name)
        return names
    if isinstance(class_names, str) or not isinstance(class_names, Sequence):
        raise TypeError(
            f"class_names must be a list of names or a dict {{index: name}}, not {type(class_names).__name__}"
        )
    if len(class_names) != n_classes:
        raise CAMError(f"class_names has {len(class_names)} names, but the model's output has {n_classes} classes")
    return [str(n) for n in class_names]
