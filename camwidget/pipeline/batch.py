"""Many images: :func:`explain_many` streams pictures through one Explainer in batches.

    for item in explain_many(model, "photos/", batch_size=16):
        print(item.name, item.top[0], item.stats["peak_y"], item.stats["centre_share"])

Pictures are read and preprocessed by a thread pool while the model runs on the batch before (decoding
overlaps the model); each batch is one compiled pass that gives the maps and the class probabilities together.
A picture that cannot be read is reported (its ``error``) and skipped, never the end of the run.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from camwidget import progress, render
from camwidget.errors import CAMError
from camwidget.explain import Explainer, Options
from camwidget.inputs import preprocess as preprocessing
from camwidget.inputs.images import read_picture
from camwidget.limits import MAX_SIDE
from camwidget.pipeline.outputs import common_root, identity

PICTURE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff")
CENTRE = 0.5  # the centre region: the middle half of the picture's height and width


@dataclass
class Explained:
    """One picture's result: what the model said, the map, and where the map lies."""

    index: int  # position in the input order
    name: str  # the file's path relative to the folder holding every input, or "image i"
    top: list[tuple[int, str, float]] = field(default_factory=list)  # (class, name, probability), best first
    class_index: int = -1  # the class explained
    cam: np.ndarray | None = None  # (h, w) float32 in [0, 1], at the layer's resolution
    overlay: np.ndarray | None = None  # RGB uint8 at the picture's size (when asked for)
    pixels: np.ndarray | None = None  # the picture as read (when overlays or pixels are asked for)
    stats: dict[str, float] = field(default_factory=dict)
    error: str | None = None  # why this picture was skipped
    key: str = ""  # the picture's identity (Picture.key)


def map_stats(cam: np.ndarray, mask: np.ndarray | None = None) -> dict[str, float]:
    """Where a map lies: its peak (row and column as fractions of the height and width, 0 top/left, 1
    bottom/right), the share of its mass in the picture's centre (the middle half of each side: a quarter of
    the area, so an even map gives 0.25), and with `mask` (bool, any size: resized) the share inside it."""
    h, w = cam.shape
    total = float(cam.sum())
    peak = np.unravel_index(int(np.argmax(cam)), cam.shape)
    ys = (np.arange(h) + 0.5) / h
    xs = (np.arange(w) + 0.5) / w
    centre = np.outer(np.abs(ys - 0.5) < CENTRE / 2, np.abs(xs - 0.5) < CENTRE / 2)
    stats = {
        "peak_y": float((peak[0] + 0.5) / h),
        "peak_x": float((peak[1] + 0.5) / w),
        "centre_share": float(cam[centre].sum() / total) if total > 0 else 0.0,
    }
    if mask is not None:
        import cv2

        inside = cv2.resize(np.asarray(mask, np.uint8), (w, h), interpolation=cv2.INTER_NEAREST).astype(bool)
        stats["mask_share"] = float(cam[inside].sum() / total) if total > 0 else 0.0
    return stats


@dataclass(frozen=True)
class Picture:
    """One picture to explain, found once: where it is, what to call it, and what makes it this picture."""

    index: int  # position in the input order
    name: str  # readable: the path relative to the folder that holds every input, or "image i"
    source: Any  # a path, or an array
    key: str  # its identity (see camwidget.pipeline.outputs.identity): a file's resolved path, or "item:image i"


def find_pictures(images: Any, exclude: Callable[[str], bool] | None = None) -> list[Picture]:
    """Every picture in `images`, in order, each once: a folder (walked recursively, picture files in sorted
    order), a path, a list of paths, folders or arrays, an (N, H, W, C) array, or a tf.data.Dataset of images
    (or (image, label)).

    Args:
        images: as above.
        exclude: ``f(folder) -> bool``; a folder it accepts is not walked (a run's own output folder, so
            that a rerun never reads its overlays as pictures).

    Returns:
        The pictures; a file named twice (two spellings of one path) is kept once. Names are relative to
        the deepest folder holding every input, so a single folder's pictures are named as inside it and
        two folders' pictures keep the folders that tell them apart.
    """
    if isinstance(images, np.ndarray):
        batch = images if images.ndim == 4 else images[None]
        return _unique([(f"image {i}", im) for i, im in enumerate(batch)])
    if type(images).__module__.startswith("tensorflow") and hasattr(images, "as_numpy_iterator"):
        return _unique(
            [
                (f"image {i}", item[0] if isinstance(item, tuple) else item)
                for i, item in enumerate(images.as_numpy_iterator())
            ]
        )
    if isinstance(images, (str, os.PathLike)):
        items: list[Any] = [images]
    elif isinstance(images, Iterable):
        items = list(images)
    else:
        raise TypeError(f"images must be a folder, paths, arrays or a tf.data.Dataset, not {type(images).__name__}")
    paths = [os.fspath(item) for item in items if isinstance(item, (str, os.PathLike))]
    for path in paths:
        if not os.path.exists(path):
            raise FileNotFoundError(f"no such file or folder: {path!r}")
    root = common_root(p if os.path.isdir(p) else os.path.dirname(os.path.abspath(p)) for p in paths)
    found: list[tuple[str, Any]] = []
    for i, item in enumerate(items):
        if not isinstance(item, (str, os.PathLike)):
            found.append((f"image {i}", item))
            continue
        path = os.fspath(item)
        files = _walk(path, exclude) if os.path.isdir(path) else [path]
        found += [(os.path.relpath(os.path.abspath(f), root) if root else os.path.basename(f), f) for f in files]
    if not found:
        raise CAMError("no images given")
    return _unique(found)


def _walk(folder: str, exclude: Callable[[str], bool] | None) -> list[str]:
    found = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not (exclude and exclude(os.path.join(root, d))))
        found += [os.path.join(root, f) for f in sorted(files) if f.lower().endswith(PICTURE_SUFFIXES)]
    if not found:
        raise CAMError(f"no pictures in folder {folder!r} (looked for {', '.join(PICTURE_SUFFIXES)})")
    return found


def _unique(found: list[tuple[str, Any]]) -> list[Picture]:
    pictures: list[Picture] = []
    seen: set[str] = set()
    for name, source in found:
        key = identity(source, name)
        if key not in seen:
            seen.add(key)
            pictures.append(Picture(len(pictures), name, source, key))
    return pictures


def picture_sources(images: Any) -> list[tuple[str, Any]]:
    """(name, source) for each picture of :func:`find_pictures`."""
    return [(p.name, p.source) for p in find_pictures(images)]


def explain_many(
    model: Any,
    images: Any,
    *,
    layer: str | None = None,
    method: str = "gradcam",
    class_index: int | None = None,
    target: Any = None,
    score: str = "auto",
    batch_size: int = 16,
    max_side: int = MAX_SIDE,
    preprocess: Callable[[np.ndarray], np.ndarray] | str | None = None,
    class_names: Sequence[str] | None = None,
    mask: np.ndarray | None = None,
    overlays: bool = False,
    pixels: bool = False,
    alpha: float = 0.5,
    colormap: str = "jet",
    workers: int = 2,
    output: str | int | None = None,
    skip: Callable[[str], bool] | None = None,
    progress_bar: bool = True,
) -> Iterator[Explained]:
    """Explain many pictures, yielding one :class:`Explained` per picture in input order.

    Pictures are read in `workers` threads while the model runs, in batches of pictures of one input size (a
    model that takes any size sees each at most `max_side` on its longer side). A tqdm bar shows after a
    second unless `progress_bar` is False (the command line has its own).

    Args:
        model: any Keras 3 model.
        images: a folder, a glob, paths, or arrays (a list or a dict by name), or Picture values.
        layer: the layer explained (None: compute_cam's default).
        method: the CAM method, as compute_cam takes it.
        class_index: None (each picture's top class) or one class for every picture.
        target: instead of a class, a function of the output (see :mod:`camwidget.targets`).
        score: "auto", "probability" or "rest", as compute_cam takes it.
        batch_size: pictures per pass (a positive int).
        max_side: the longest side a model that takes any size sees.
        preprocess: a function of RGB 0-255, a keras.applications family's name, or None (detected).
        class_names: the classes' names, for each result's label.
        mask: a region (bool, any size: resized); each result's stats then give the map's share inside it.
        overlays: also make each picture's overlay (H, W, 3) at its own size (and keep its pixels).
        pixels: keep each picture as read (``item.pixels``) without making an overlay.
        alpha: the overlays' opacity, 0 to 1.
        colormap: the overlays' matplotlib colormap.
        workers: threads reading pictures.
        output: the output's name or index, for a model with several.
        skip: skip(name) true: the picture is left out (a resumed run).
        progress_bar: show a tqdm bar.

    Returns:
        An iterator of :class:`Explained`, one per picture not skipped, in input order; a picture that cannot
        be read or explained comes with its ``error`` in words, and the run goes on.

    Raises:
        CAMError: batch_size, a layer, method or option that cannot be right (before any picture is read).
    """
    from tqdm.auto import tqdm

    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise CAMError(f"batch_size must be a positive int, not {batch_size!r}")
    explainer = Explainer(model, layer=layer, output=output, options=Options(method, score), target=target)
    steps = preprocessing.resolve(model, preprocess)
    expected = explainer.expected_input_shape() or (None, None, 3)
    given = images if _are_pictures(images) else find_pictures(images)
    pictures = [p for p in given if not (skip and skip(p.name))]
    names: list[str] | None = None

    def load(picture: Picture) -> tuple[Picture, Any, Any]:
        try:
            pixels = read_picture(picture.source, repr(picture.name)).pixels
            x, _ = preprocessing.model_input(pixels, expected, max_side, steps.fn)
            return picture, pixels, x
        except Exception as exc:  # noqa: BLE001 - reported in the results, the run goes on
            kind = "" if isinstance(exc, (CAMError, FileNotFoundError)) else f"{type(exc).__name__}: "
            return picture, None, f"{kind}{exc}"

    bar = tqdm(total=len(pictures), desc="pictures", unit="img", delay=1.0, leave=False, disable=not progress_bar)
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool, bar:
        pending: list[tuple[Picture, np.ndarray, np.ndarray]] = []
        done = 0
        for picture, read, x in _ahead(pool, load, pictures, 2 * batch_size):
            if isinstance(x, str):
                done += 1
                bar.update(1)
                yield Explained(picture.index, picture.name, error=x, key=picture.key)
                continue
            pending.append((picture, read, x))
            full = len(pending) == batch_size
            if full or pending[0][2].shape != x.shape:
                group = pending if full else pending[:-1]
                pending = pending[len(group) :]
                if names is None:
                    names = _checked_settings(explainer, group[0][2], class_index, class_names)
                done += len(group)
                bar.update(len(group))
                progress.step(done, len(pictures), "pictures")  # the explorer's bar, where one runs this
                yield from _explain_group(explainer, group, class_index, names, mask, overlays, pixels, alpha, colormap)
        if pending:
            if names is None:
                names = _checked_settings(explainer, pending[0][2], class_index, class_names)
            bar.update(len(pending))
            yield from _explain_group(explainer, pending, class_index, names, mask, overlays, pixels, alpha, colormap)


def _are_pictures(images: Any) -> bool:
    return isinstance(images, list) and bool(images) and all(isinstance(p, Picture) for p in images)


def _ahead(pool: ThreadPoolExecutor, fn: Callable[[Any], Any], items: Sequence[Any], depth: int) -> Iterator[Any]:
    """fn over items in the pool, results in order, at most `depth` computed ahead of the one consumed: the
    pictures are decoded while the model runs, and a folder of any size holds only that many in memory
    (ThreadPoolExecutor.map would decode them all ahead)."""
    from collections import deque

    pending: deque = deque()
    for item in items:
        pending.append(pool.submit(fn, item))
        if len(pending) > depth:
            yield pending.popleft().result()
    while pending:
        yield pending.popleft().result()


def _checked_settings(explainer: Explainer, x: np.ndarray, class_index: Any, given: Sequence[str] | None) -> list[str]:
    """The settings checked on the first batch's input shape, before any picture is explained (the layer,
    the output, the class's range): a typo is an error of the run, never a 'skipped' on every picture.
    Returns the class names."""
    from camwidget.classes import resolve_class_names

    layout = explainer.layout(x.shape[1:])
    if not explainer.explains_class:
        layout.resolve(explainer.layer_name, explainer.grid)
        explainer.engine.output_index(layout, explainer.output_spec, classes=False)
        return ["target"]
    _, _, n_classes = explainer.resolve(layout)
    if class_index is None or isinstance(class_index, (int, np.integer)):
        explainer.classes(class_index, 1, n_classes)
    return resolve_class_names(given, n_classes)


def _explain_group(
    explainer: Explainer,
    group: list[tuple[Picture, np.ndarray, np.ndarray]],
    class_index: int | None,
    names: list[str],
    mask: np.ndarray | None,
    overlays: bool,
    keep_pixels: bool,
    alpha: float,
    colormap: str,
) -> Iterator[Explained]:
    batch = np.concatenate([g[2] for g in group])
    try:
        maps, probabilities, classes = explainer.explain_with_scores(batch, class_index)
    except CAMError as exc:
        for picture, _, _ in group:
            yield Explained(picture.index, picture.name, error=str(exc), key=picture.key)
        return
    for (picture, pixels, _), cam, probs, c in zip(group, maps, probabilities, classes):
        order = np.argsort(-probs)[:5]
        top = [(int(k), names[k] if k < len(names) else str(k), float(probs[k])) for k in order]
        item = Explained(picture.index, picture.name, top, int(c), cam, stats=map_stats(cam, mask), key=picture.key)
        if overlays or keep_pixels:
            item.pixels = pixels
        if overlays:
            item.overlay = render.overlay(pixels, cam, alpha, colormap)
        yield item
