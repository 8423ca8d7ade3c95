"""The audit's first stage: every picture's map through explain_many (the one path to maps), kept small.

Pictures stream through :func:`camwidget.explain_many` one class at a time (the labelled class when labels
are given, else each picture's top class); of each result only the map and the picture downsampled to a
side x side grid, and a few numbers, are kept, so memory grows by about 4 * side^2 * 4 bytes a picture
(16 KB at side 32, 4 KB at 16) whatever the pictures' size.

With a store (the command line's --out, a :class:`camwidget.pipeline.report.Report`), each picture's map at
the layer's resolution and what is kept of it (:class:`Kept`) are written there as they come, and a picture the
store already holds is read back from it instead of being explained again: a run that stopped resumes.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from camwidget.audits.regions import mass
from camwidget.pipeline.batch import PICTURE_SUFFIXES, Explained, Picture, explain_many, find_pictures

if TYPE_CHECKING:
    from camwidget.pipeline.report import Report


@dataclass
class Collected:
    """What the audit keeps of each picture that could be explained, in the order of the input."""

    pictures: list[Picture] = field(default_factory=list)
    classes: list[int] = field(default_factory=list)  # the class each map explains
    predicted: list[int] = field(default_factory=list)  # the model's top class
    confidence: list[float] = field(default_factory=list)  # its probability
    masses: list[np.ndarray] = field(default_factory=list)  # (side, side) float32, mass 1
    pixels: list[np.ndarray] = field(default_factory=list)  # (side, side, 3) float32 0..1
    masks: list[np.ndarray | None] = field(default_factory=list)  # (side, side) float32 0..1, or None
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (picture, why)
    problems: list[str] = field(default_factory=list)  # what was left out of a picture, and why
    map_shape: tuple[int, ...] = ()  # the layer's map (h, w) of the first picture in input order
    reused: int = 0  # pictures read back from an earlier run's output folder, not explained again


@dataclass
class Kept:
    """What the audit keeps of one picture besides its map: its class, the model's top class and probability,
    its pixels on the grid and its size."""

    class_index: int  # the class its map explains (its label, or its top class)
    predicted: int
    confidence: np.float32
    pixels: np.ndarray  # (side, side, 3) float32 0..1
    shape: tuple[int, ...]  # the picture's (H, W)

    def arrays(self) -> dict[str, np.ndarray]:
        """As arrays (kept beside the map in an output folder: Report.add's `extra`)."""
        return {
            "pixels": self.pixels,
            "shape": np.asarray(self.shape, np.int64),
            "classes": np.asarray([self.class_index, self.predicted], np.int64),
            "confidence": np.asarray([self.confidence], np.float32),
        }

    @classmethod
    def read(cls, arrays: dict[str, np.ndarray]) -> Kept:
        """A picture kept by :meth:`arrays`."""
        c, top = (int(v) for v in arrays["classes"])
        return cls(c, top, np.float32(arrays["confidence"][0]), arrays["pixels"], tuple(arrays["shape"].tolist()))


def small(array: np.ndarray, side: int) -> np.ndarray:
    """An image or a map resized to side x side: area-averaged when shrinking, bilinear when growing."""
    import cv2

    array = np.asarray(array, np.float32)
    shrink = array.shape[0] >= side and array.shape[1] >= side
    return cv2.resize(array, (side, side), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)


def number_of_classes(model: Any, pictures: Sequence[Picture], layer: str | None, preprocess: Any) -> int:
    """The model's number of classes, found by a dry run on the first readable picture's input shape."""
    from camwidget.explain import Explainer
    from camwidget.inputs import preprocess as preprocessing
    from camwidget.inputs.images import read_picture
    from camwidget.limits import MAX_SIDE

    explainer = Explainer(model, layer=layer)
    expected = explainer.expected_input_shape() or (None, None, 3)
    steps = preprocessing.resolve(model, preprocess)
    for picture in pictures:
        try:
            pixels = read_picture(picture.source, repr(picture.name)).pixels
        except Exception:  # noqa: BLE001 - unreadable: the run lists it; another picture gives the shape
            continue
        x, _ = preprocessing.model_input(pixels, expected, MAX_SIDE, steps.fn)
        return explainer.resolve(explainer.layout(x.shape[1:]))[2]
    raise ValueError("none of the pictures could be read, so there is nothing to audit")


def label_classes(
    labels: Any, pictures: Sequence[Picture], class_names: Sequence[str], from_names: bool = True
) -> list[int]:
    """Each picture's class from `labels`: a sequence in the pictures' order, or a mapping from the picture's
    name (its path relative to the inputs' folder, or "image i"; with or without its extension) to its label.
    A label is a class index or a class name.

    Raises:
        ValueError: a sequence of the wrong length, a picture with no label, a class out of range or unknown.
    """
    n_classes = len(class_names)
    if isinstance(labels, Mapping):
        by_name = {str(k): v for k, v in labels.items()}
        by_stem = {os.path.splitext(k)[0]: v for k, v in by_name.items()}
        missing = [p.name for p in pictures if p.name not in by_name and os.path.splitext(p.name)[0] not in by_stem]
        if missing:
            raise ValueError(
                f"no label for {len(missing)} of {len(pictures)} pictures (first: {missing[0]!r}); labels are looked "
                "up by the picture's path relative to the folder given (with or without its extension)"
            )
        values = [by_name.get(p.name, by_stem.get(os.path.splitext(p.name)[0])) for p in pictures]
    else:
        values = list(np.asarray(labels).tolist()) if isinstance(labels, np.ndarray) else list(labels)
        if len(values) != len(pictures):
            raise ValueError(f"labels has {len(values)} entries for {len(pictures)} pictures; give one label a picture")
    index = {name: i for i, name in enumerate(class_names)}
    classes, unknown = [], []
    for value in values:
        if isinstance(value, (int, np.integer)) and not isinstance(value, bool) and 0 <= value < n_classes:
            classes.append(int(value))
        elif isinstance(value, str) and value.strip().lstrip("-").isdigit() and 0 <= int(value) < n_classes:
            classes.append(int(value))
        elif isinstance(value, str) and from_names and value in index:
            classes.append(index[value])
        else:
            unknown.append(value)
    if unknown:
        shown = ", ".join(repr(u) for u in list(dict.fromkeys(unknown))[:5])
        raise ValueError(
            f"{len(unknown)} labels are not classes of this model: {shown}; a label is a class index from 0 to "
            f"{n_classes - 1} or one of the class names ({', '.join(repr(n) for n in class_names[:5])}"
            f"{', ...' if n_classes > 5 else ''})"
        )
    return classes


def mask_finder(masks: Any, pictures: Sequence[Picture]) -> Callable[[Picture], np.ndarray | None]:
    """picture -> its object mask (bool, the picture's size) or None, from `masks`: an (N, H, W) array or a
    sequence in the pictures' order, a mapping from picture name to mask, or a folder holding one mask picture
    per picture under the same relative name (any picture extension; nonzero = object)."""
    if masks is None:
        return lambda picture: None
    if isinstance(masks, (str, os.PathLike)):
        folder = os.fspath(masks)
        if not os.path.isdir(folder):
            raise ValueError(f"masks must be a folder of mask pictures; {folder!r} is not a folder")

        def from_folder(picture: Picture) -> np.ndarray | None:
            from camwidget.inputs.images import read_picture

            stem = os.path.splitext(picture.name)[0]
            for suffix in PICTURE_SUFFIXES:
                path = os.path.join(folder, stem + suffix)
                if os.path.isfile(path):
                    return read_picture(path).pixels.max(axis=-1) > 127
            return None

        return from_folder
    if isinstance(masks, Mapping):
        given = {str(k): v for k, v in masks.items()}
        return lambda picture: None if given.get(picture.name) is None else np.asarray(given[picture.name]) > 0
    listed = list(masks)
    if len(listed) != len(pictures):
        raise ValueError(f"masks has {len(listed)} entries for {len(pictures)} pictures; give one mask a picture")
    by_index = {p.index: np.asarray(m) > 0 for p, m in zip(pictures, listed)}
    for picture, mask in zip(pictures, listed):
        source = picture.source
        if isinstance(source, np.ndarray) and np.asarray(mask).shape[:2] != source.shape[:2]:
            raise ValueError(
                f"the mask of {picture.name!r} is {np.asarray(mask).shape[:2]} but the picture is "
                f"{source.shape[:2]}; a mask has the picture's height and width"
            )
    return lambda picture: by_index.get(picture.index)


def collect(
    model: Any,
    pictures: Sequence[Picture],
    classes: Sequence[int] | None,
    find_mask: Callable[[Picture], np.ndarray | None],
    side: int,
    progress_bar: bool = True,
    store: Report | None = None,
    explain: Callable[..., Iterator[Explained]] = explain_many,
    **settings: Any,
) -> Collected:
    """Maps of every picture (for its class in `classes`, or its top class), kept small; see the module.

    Args:
        model, pictures, classes, find_mask, side, progress_bar: as the module says.
        store: None, or a :class:`camwidget.pipeline.report.Report` of an output folder: the pictures it holds
            are read back from it (not explained again), and each picture explained is kept in it as it comes,
            so that a run that stopped resumes (the command line's ``--out``).
        explain: explain_many, or a function that takes its arguments (``camwidget audit --ray``).
        **settings: explain_many's settings.

    Returns:
        The :class:`Collected` pictures, in input order; ``reused`` counts those read back from `store`.
    """
    kept: dict[int, tuple[Kept, np.ndarray]] = {}  # index -> what is kept, its map on the grid (mass 1)
    shapes: dict[int, tuple[int, ...]] = {}  # index -> the shape of its map at the layer
    by_index = {p.index: p for p in pictures}
    found = Collected()
    groups: list[tuple[int | None, list[Picture]]]
    if classes is None:
        groups = [(None, list(pictures))]
    else:
        by_class: dict[int, list[Picture]] = {}
        for picture, c in zip(pictures, classes):
            by_class.setdefault(c, []).append(picture)
        groups = sorted(by_class.items())
    for class_index, group in groups:
        todo = [p for p in group if store is None or not store.done(p)]
        for picture in group:
            if store is not None and store.done(picture):
                _, cam, arrays = store.kept(picture)
                kept[picture.index] = (Kept.read(arrays), mass(small(cam, side)[None])[0])
                shapes[picture.index] = tuple(cam.shape)
                found.reused += 1
        if not todo:
            continue
        for item in explain(model, todo, class_index=class_index, pixels=True, progress_bar=progress_bar, **settings):
            if item.error is not None or item.cam is None or item.pixels is None:
                found.skipped.append((item.name, item.error or "no map"))
                continue
            top_class, _, top_probability = item.top[0]
            one = Kept(
                int(item.class_index if class_index is None else class_index),
                int(top_class),
                np.float32(top_probability),
                small(item.pixels[..., :3], side).astype(np.float32) / np.float32(255.0),
                tuple(item.pixels.shape[:2]),
            )
            if store is not None:
                store.add(item, one.arrays())  # no overlay: the map, then these arrays
            kept[item.index] = (one, mass(small(item.cam, side)[None])[0])  # the map itself is not kept
            shapes[item.index] = tuple(item.cam.shape)
    for index in sorted(kept):
        (one, grid), picture = kept[index], by_index[index]
        found.pictures.append(picture)
        found.classes.append(one.class_index)
        found.predicted.append(one.predicted)
        found.confidence.append(float(one.confidence))
        found.masses.append(grid)
        found.pixels.append(one.pixels)
        found.masks.append(_mask_cells(picture, one.shape, find_mask, side, found.problems))
    found.map_shape = shapes[min(shapes)] if shapes else ()  # the first picture's: the same when resumed
    return found


def _mask_cells(
    picture: Picture,
    shape: tuple[int, ...],
    find_mask: Callable[[Picture], np.ndarray | None],
    side: int,
    problems: list[str],
) -> np.ndarray | None:
    """The picture's object mask on the grid (0..1), or None: none given, unreadable or of another size (said
    in `problems`)."""
    try:
        full = find_mask(picture)
    except Exception as exc:  # noqa: BLE001 - an unreadable mask leaves the picture without one
        problems.append(f"the mask of {picture.name!r} could not be read ({exc}); audited without it")
        return None
    if full is None:
        return None
    if tuple(full.shape[:2]) != tuple(shape):
        problems.append(
            f"the mask of {picture.name!r} is {full.shape[1]}x{full.shape[0]} but the picture is "
            f"{shape[1]}x{shape[0]}; audited without its mask"
        )
        return None
    return np.clip(small(full.astype(np.float32), side), 0.0, 1.0)


__all__ = ["Collected", "collect", "find_pictures", "label_classes", "mask_finder", "number_of_classes", "small"]
