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

from . import preprocess as preprocessing
from . import progress, render
from .errors import CAMError
from .explain import Explainer, Options
from .images import read_picture

PICTURE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff")
CENTRE = 0.5  # the centre region: the middle half of the picture's height and width


@dataclass
class Explained:
    """One picture's result: what the model said, the map, and where the map lies."""

    index: int  # position in the input order
    name: str  # the file's path relative to the folder given, or "image i"
    top: list[tuple[int, str, float]] = field(default_factory=list)  # (class, name, probability), best first
    class_index: int = -1  # the class explained
    cam: np.ndarray | None = None  # (h, w) float32 in [0, 1], at the layer's resolution
    overlay: np.ndarray | None = None  # RGB uint8 at the picture's size (when asked for)
    pixels: np.ndarray | None = None  # the picture as read (when overlays are asked for)
    stats: dict[str, float] = field(default_factory=dict)
    error: str | None = None  # why this picture was skipped


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


def picture_sources(images: Any) -> list[tuple[str, Any]]:
    """(name, source) for each picture: a folder (walked recursively, picture files in sorted order), a path,
    a list of paths or arrays, an (N, H, W, C) array, or a tf.data.Dataset of images (or (image, label))."""
    if isinstance(images, (str, os.PathLike)):
        path = os.fspath(images)
        if os.path.isdir(path):
            found = []
            for root, dirs, files in os.walk(path):
                dirs.sort()
                found += [os.path.join(root, f) for f in sorted(files) if f.lower().endswith(PICTURE_SUFFIXES)]
            if not found:
                raise CAMError(f"no pictures in folder {path!r} (looked for {', '.join(PICTURE_SUFFIXES)})")
            return [(os.path.relpath(p, path), p) for p in found]
        if not os.path.exists(path):
            raise FileNotFoundError(f"no such file or folder: {path!r}")
        return [(os.path.basename(path), path)]
    if isinstance(images, np.ndarray):
        batch = images if images.ndim == 4 else images[None]
        return [(f"image {i}", im) for i, im in enumerate(batch)]
    if type(images).__module__.startswith("tensorflow") and hasattr(images, "as_numpy_iterator"):
        return [(f"image {i}", item[0] if isinstance(item, tuple) else item)
                for i, item in enumerate(images.as_numpy_iterator())]  # fmt: skip
    if isinstance(images, Iterable):
        sources = []
        for i, item in enumerate(images):
            if isinstance(item, (str, os.PathLike)) and os.path.isdir(item):
                sources += [(os.path.join(os.path.basename(os.fspath(item)), n), s) for n, s in picture_sources(item)]
            elif isinstance(item, (str, os.PathLike)):
                sources.append((os.fspath(item), item))
            else:
                sources.append((f"image {i}", item))
        if not sources:
            raise CAMError("no images given")
        return sources
    raise TypeError(f"images must be a folder, paths, arrays or a tf.data.Dataset, not {type(images).__name__}")


def explain_many(
    model: Any, images: Any, *, layer: str | None = None, method: str = "gradcam", class_index: int | None = None,
    target: Any = None, score: str = "auto", batch_size: int = 16, max_side: int = 1024,
    preprocess: Callable[[np.ndarray], np.ndarray] | str | None = None, class_names: Sequence[str] | None = None,
    mask: np.ndarray | None = None, overlays: bool = False, alpha: float = 0.5, colormap: str = "jet",
    workers: int = 2, output: str | int | None = None, skip: Callable[[str], bool] | None = None,
    progress_bar: bool = True,
) -> Iterator[Explained]:  # fmt: skip
    """Explain many pictures, yielding one :class:`Explained` per picture in input order (skipped ones with
    their ``error``). ``skip(name)`` true: the picture is left out (a resumed run). Batches are of pictures of
    one input size (a model that takes any size sees each at most `max_side` on its longer side). A tqdm bar
    shows after a second unless `progress_bar` is False (the command line has its own)."""
    from tqdm.auto import tqdm

    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise CAMError(f"batch_size must be a positive int, not {batch_size!r}")
    explainer = Explainer(model, layer=layer, output=output, options=Options(method, score), target=target)
    steps = preprocessing.resolve(model, preprocess)
    expected = explainer.expected_input_shape() or (None, None, 3)
    sources = [(i, name, src) for i, (name, src) in enumerate(picture_sources(images)) if not (skip and skip(name))]
    names: list[str] | None = None

    def load(item: tuple[int, str, Any]) -> tuple[int, str, Any, Any]:
        index, name, source = item
        try:
            pixels = read_picture(source, repr(name)).pixels
            x, _ = preprocessing.model_input(pixels, expected, max_side, steps.fn)
            return index, name, pixels, x
        except Exception as exc:  # noqa: BLE001 - reported in the results, the run goes on
            kind = "" if isinstance(exc, (CAMError, FileNotFoundError)) else f"{type(exc).__name__}: "
            return index, name, None, f"{kind}{exc}"

    bar = tqdm(total=len(sources), desc="pictures", unit="img", delay=1.0, leave=False, disable=not progress_bar)
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool, bar:
        pending = []
        done = 0
        for index, name, pixels, x in _ahead(pool, load, sources, 2 * batch_size):
            if isinstance(x, str):
                done += 1
                bar.update(1)
                yield Explained(index, name, error=x)
                continue
            pending.append((index, name, pixels, x))
            full = len(pending) == batch_size
            if full or pending[0][3].shape != x.shape:
                group = pending if full else pending[:-1]
                pending = pending[len(group):]
                if names is None:
                    names = _class_names(explainer, group[0][3], class_names)
                done += len(group)
                bar.update(len(group))
                progress.step(done, len(sources), "pictures")  # the explorer's bar, where one runs this
                yield from _explain_group(explainer, group, class_index, names, mask, overlays, alpha, colormap)
        if pending:
            if names is None:
                names = _class_names(explainer, pending[0][3], class_names)
            bar.update(len(pending))
            yield from _explain_group(explainer, pending, class_index, names, mask, overlays, alpha, colormap)


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


def _class_names(explainer: Explainer, x: np.ndarray, given: Sequence[str] | None) -> list[str]:
    from .session import resolve_class_names

    if explainer.target is not None:
        return ["target"]
    _, _, n_classes = explainer.resolve(explainer.layout(x.shape[1:]))
    return resolve_class_names(given, n_classes)


def _explain_group(
    explainer: Explainer, group: list[tuple[int, str, np.ndarray, np.ndarray]], class_index: int | None,
    names: list[str], mask: np.ndarray | None, overlays: bool, alpha: float, colormap: str,
) -> Iterator[Explained]:  # fmt: skip
    batch = np.concatenate([g[3] for g in group])
    try:
        maps, probabilities, classes = explainer.explain_with_scores(batch, class_index)
    except CAMError as exc:
        for index, name, _, _ in group:
            yield Explained(index, name, error=str(exc))
        return
    for (index, name, pixels, _), cam, probs, c in zip(group, maps, probabilities, classes):
        order = np.argsort(-probs)[:5]
        item = Explained(
            index, name, [(int(k), names[k] if k < len(names) else str(k), float(probs[k])) for k in order],
            int(c), cam, stats=map_stats(cam, mask),
        )  # fmt: skip
        if overlays:
            item.pixels = pixels
            item.overlay = render.overlay(pixels, cam, alpha, colormap)
        yield item
