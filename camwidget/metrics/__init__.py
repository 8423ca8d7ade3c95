"""Can this map be trusted? Faithfulness scores and sanity checks for saliency maps.

Every function takes the model, images in its input space (N, H, W, C), and maps (N, h, w) at any resolution
(compute_cam's, or any other method's); maps are resized bilinearly to the images and ranked, most relevant
first. "Score" is the class's probability: the output's own softmax or sigmoid, or a softmax over it. The class
is each image's top class unless `class_index` says otherwise.

=========================  =======================================================================  ==========
deletion / insertion       the class score as the most relevant pixels are replaced by the baseline  Petsiuk et al.
                           (deletion) or put back into it (insertion), in `steps` equal steps; the     2018 (RISE)
                           area under the curve (trapezoids on [0, 1]): deletion low, insertion high
                           is good
average_drop /             AD = 100 * mean_i max(0, Y_i - O_i) / Y_i, IC = 100 * mean_i [O_i > Y_i];    Chattopadhay
increase_in_confidence     Y the score of the image, O of the image multiplied by its map in [0, 1]    et al. 2018
road                       ROAD: remove the most (or least) relevant p% and fill them by noisy         Rong et al.
                           linear imputation (each removed pixel the mean of its neighbours, plus       2022
                           noise), so that the filling leaks no shape; the score at each p
pointing_game              hit if the map's peak falls inside the box or mask (within `tolerance`      Zhang et al.
                           pixels); energy_pointing_game: the map's share of its mass in the mask      2016; Wang
                                                                                                      et al. 2020
model_randomization        cascading: a copy's layers re-initialised from the top down, one more at    Adebayo et
                           each step; Spearman's rho of each image's map before and after              al. 2018
data_randomization         a copy trained on shuffled labels; rho of its maps against the model's
=========================  =======================================================================  ==========

Deletion and insertion run inside one compiled function per input shape: the perturbed copies are made in
the graph from the image, the baseline and each pixel's rank, and go through the model in batches, so no
copy is made in NumPy. The default baseline is each image's mean colour: a constant keeps no trace of what
was removed (Petsiuk et al. delete to black), where a blur keeps the removed object's colour and coarse shape,
so a model that reads colour still sees it (measured in tests/test_metrics.py: on coloured squares every map's
deletion area was about 0.96 with a blurred baseline). "blur" (a Gaussian, sigma = 5% of the longer side, as
RISE's insertion starts from) and "zero" are there to choose.

A model with several inputs: every function that runs the model takes compute_cam's ``input=`` (the input the
images go to, a name or index) and ``other_inputs=`` (the others' values: one item shared by every image, or one
row per image), read by the same :func:`camwidget.inputs.feed.make_feed`; each perturbed copy goes with its image's
other inputs.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import cv2
import keras
import numpy as np

from camwidget import progress
from camwidget.engines import CAMEngine, class_vector, engine_for, num_classes
from camwidget.errors import CAMError
from camwidget.inputs.feed import Feed, make_feed
from camwidget.inputs.images import model_batch

BASELINES = ("mean", "blur", "zero")
_CURVE_BATCH = 32  # perturbed copies per forward pass


# -- inputs, checked -----------------------------------------------------------------------------------------


@dataclasses.dataclass
class _Setup:
    engine: CAMEngine
    images: np.ndarray  # (N, H, W, C) float32
    ranks: np.ndarray  # (N, H, W) int32: 0 for the most relevant pixel
    maps: np.ndarray  # (N, H, W) float32, at the images' size
    classes: np.ndarray  # (N,) int32
    output: int
    original: np.ndarray  # (N,) the class's score on the images as they are
    feed: Feed | None = None  # a model with several inputs: where the images go, the others' values


def _setup(
    model: keras.Model,
    images: Any,
    maps: Any,
    class_index: Any,
    output: str | int | None,
    input: str | int | None = None,
    other_inputs: Any = None,
) -> _Setup:
    engine = engine_for(model)
    engine.sync()
    feed = make_feed(model, input, other_inputs)
    batch = model_batch(images)
    if feed is not None:
        feed.rows(len(batch))  # one row, or one per image: else an error that says so, before any work
    layout = engine.layout(batch.shape[1:], feed)
    index = engine.output_index(layout, output)
    try:
        n_classes = num_classes(layout, index)
    except CAMError as exc:
        raise CAMError(f"these metrics score a class, and {exc}") from None
    if n_classes < 2:
        raise CAMError(
            f"these metrics score a class's probability, and output {layout.output_names[index]!r} has one unit without "
            "a sigmoid: a regression, with no classes; use a target with compute_cam to explain it"
        )
    maps = _checked_maps(maps, batch)
    full = np.stack([_resize(m, *batch.shape[1:3]) for m in maps])
    probabilities = engine.class_probabilities(batch, index, feed)
    classes = class_vector(class_index, len(batch), n_classes)
    classes = np.where(classes < 0, probabilities.argmax(axis=1), classes).astype(np.int32)
    original = probabilities[np.arange(len(batch)), classes]
    return _Setup(engine, batch, rank_pixels(full), full, classes, index, original, feed)


def _checked_maps(maps: Any, images: np.ndarray) -> np.ndarray:
    array = np.asarray(maps, np.float32)
    if array.ndim == 2:
        array = array[None]
    if array.ndim != 3 or len(array) != len(images):
        raise CAMError(
            f"maps have shape {np.asarray(maps).shape}; expected one map per image, (N, h, w) with N = {len(images)} "
            f"(as compute_cam returns for images of shape {images.shape})"
        )
    if not np.isfinite(array).all():
        raise CAMError("maps contain NaN or infinite values")
    return array


def _resize(m: np.ndarray, height: int, width: int) -> np.ndarray:
    if m.shape == (height, width):
        return m.astype(np.float32)
    return cv2.resize(np.ascontiguousarray(m, np.float32), (width, height), interpolation=cv2.INTER_LINEAR)


def rank_pixels(maps: np.ndarray) -> np.ndarray:
    """(N, H, W) maps -> each pixel's rank, 0 the most relevant; ties in pixel order (a stable sort)."""
    flat = maps.reshape(len(maps), -1)
    order = np.argsort(-flat, axis=1, kind="stable")
    ranks = np.empty_like(order)
    np.put_along_axis(ranks, order, np.arange(flat.shape[1])[None].repeat(len(flat), 0), axis=1)
    return ranks.reshape(maps.shape).astype(np.int32)


def baseline_of(images: np.ndarray, baseline: str | float | np.ndarray = "mean") -> np.ndarray:
    """The state pixels are removed to: "blur" (Gaussian, sigma 5% of the longer side), "mean" (each
    image's mean colour), "zero", a number, or an array of the images' shape."""
    if isinstance(baseline, str):
        if baseline == "blur":
            sigma = 0.05 * max(images.shape[1:3])
            return np.stack([cv2.GaussianBlur(im, (0, 0), sigma).reshape(im.shape) for im in images])
        if baseline == "mean":
            return np.broadcast_to(images.mean(axis=(1, 2), keepdims=True), images.shape).astype(np.float32)
        if baseline == "zero":
            return np.zeros_like(images)
        raise CAMError(
            f"baseline must be one of {', '.join(map(repr, BASELINES))}, a number or an array, not {baseline!r}"
        )
    if isinstance(baseline, (int, float, np.number)) and not isinstance(baseline, bool):
        if not np.isfinite(baseline):
            raise CAMError(
                f"baseline must be a finite number (or 'mean', 'blur', 'zero', or an array), not {baseline!r}"
            )
        return np.full_like(images, float(baseline))
    array = np.asarray(baseline, np.float32)
    if array.shape != images.shape:
        raise CAMError(f"baseline has shape {array.shape}; expected the images' shape {images.shape}")
    if not np.isfinite(array).all():
        raise CAMError(f"baseline contains {int((~np.isfinite(array)).sum())} NaN or infinite values; give finite ones")
    return array


def _check_steps(steps: Any) -> int:
    return _check_int(steps, "steps", 1)


def _check_int(value: Any, name: str, low: int) -> int:
    """An option that counts (steps, epochs, a seed, a tolerance in pixels): an int of at least `low`."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or value < low:
        raise CAMError(f"{name} must be an int of at least {low}, not {value!r}")
    return int(value)


def _check_number(value: Any, name: str, low: float) -> float:
    """A real-valued option (noise): a finite number of at least `low`."""
    number = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))
    if not number or not np.isfinite(value) or value < low:
        raise CAMError(f"{name} must be a finite number of at least {low:g}, not {value!r}")
    return float(value)


# -- deletion and insertion ------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Curve:
    """A deletion or insertion curve per image: scores (N, steps + 1) at fractions (steps + 1,) of the pixels."""

    kind: str  # "deletion" | "insertion"
    fractions: np.ndarray
    scores: np.ndarray

    @property
    def areas(self) -> np.ndarray:
        """(N,) the area under each image's curve, trapezoids on [0, 1]."""
        return ((self.scores[:, :-1] + self.scores[:, 1:]) / 2 * np.diff(self.fractions)).sum(axis=1)

    @property
    def area(self) -> float:
        """The mean area over the images: deletion lower is better, insertion higher."""
        return float(self.areas.mean())


def deletion(
    model: keras.Model,
    images: Any,
    maps: Any,
    *,
    class_index: Any = None,
    steps: int = 100,
    baseline: str | float | np.ndarray = "mean",
    output: str | int | None = None,
    input: str | int | None = None,
    other_inputs: Any = None,
) -> Curve:
    """Deletion (Petsiuk et al. 2018): the class score as the most relevant pixels (by the map) are replaced by
    the baseline, floor(k P / steps) of the P pixels at step k. A faithful map makes it fall fast (small area).
    input, other_inputs: for a model with several inputs, as compute_cam takes them."""
    return _curve("deletion", model, images, maps, class_index, steps, baseline, output, input, other_inputs)


def insertion(
    model: keras.Model,
    images: Any,
    maps: Any,
    *,
    class_index: Any = None,
    steps: int = 100,
    baseline: str | float | np.ndarray = "mean",
    output: str | int | None = None,
    input: str | int | None = None,
    other_inputs: Any = None,
) -> Curve:
    """Insertion (Petsiuk et al. 2018): from the baseline, the most relevant pixels put back first. A faithful
    map makes the score rise fast (large area). input, other_inputs: for a model with several inputs."""
    return _curve("insertion", model, images, maps, class_index, steps, baseline, output, input, other_inputs)


def _curve(
    kind: str,
    model: keras.Model,
    images: Any,
    maps: Any,
    class_index: Any,
    steps: int,
    baseline: Any,
    output: Any,
    input: Any = None,
    other_inputs: Any = None,
) -> Curve:
    steps = _check_steps(steps)
    setup = _setup(model, images, maps, class_index, output, input, other_inputs)
    base = baseline_of(setup.images, baseline)
    pixels = int(np.prod(setup.images.shape[1:3]))
    counts = np.linspace(0, pixels, steps + 1).astype(np.int32)  # floor, as xplique does
    n = len(setup.images)
    rows = np.repeat(np.arange(n, dtype=np.int32), steps + 1)  # every (image, step) pair, batched across images
    with progress.bar(n * (steps + 1), f"{kind} curves"):
        scores = setup.engine.perturbed_scores(
            setup.images,
            base,
            setup.ranks,
            rows,
            np.tile(counts, n),
            setup.classes[rows],
            setup.output,
            insert=kind == "insertion",
            batch=_CURVE_BATCH,
            feed=setup.feed,
        ).reshape(n, steps + 1)
    return Curve(kind, counts / pixels, scores)


# -- confidence ------------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Confidence:
    """Average drop and increase in confidence (Chattopadhay et al. 2018), in percent, and the scores."""

    average_drop: float
    increase_in_confidence: float
    original: np.ndarray  # (N,) Y, the class's score on the image
    explained: np.ndarray  # (N,) O, on the image times its map


def confidence(
    model: keras.Model,
    images: Any,
    maps: Any,
    *,
    class_index: Any = None,
    output: str | int | None = None,
    input: str | int | None = None,
    other_inputs: Any = None,
) -> Confidence:
    """AD = 100 mean max(0, Y - O) / Y and IC = 100 mean [O > Y], with O the score of the image multiplied
    by its map (resized, scaled to [0, 1] by its max; the "explanation map" of the paper). input,
    other_inputs: for a model with several inputs, as compute_cam takes them."""
    setup = _setup(model, images, maps, class_index, output, input, other_inputs)
    peak = setup.maps.reshape(len(setup.maps), -1).max(axis=1).reshape(-1, 1, 1)
    unit = np.divide(np.maximum(setup.maps, 0), peak, out=np.zeros_like(setup.maps), where=peak > 0)
    explained = setup.engine.class_probabilities(setup.images * unit[..., None], setup.output, setup.feed)
    o = explained[np.arange(len(unit)), setup.classes]
    y = setup.original
    drop = np.divide(np.maximum(0.0, y - o), y, out=np.zeros_like(y), where=y > 0)
    return Confidence(float(100 * drop.mean()), float(100 * (o > y).mean()), y, o)


# -- ROAD ------------------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Road:
    """ROAD scores (N, len(percents)) after removing `percents` % of the pixels, most or least relevant first."""

    percents: np.ndarray
    scores: np.ndarray
    most_relevant_first: bool

    @property
    def mean(self) -> float:
        """The mean score over images and percentages: low is good removing the most relevant first (MoRF),
        high removing the least relevant first (LeRF)."""
        return float(self.scores.mean())


def road(
    model: keras.Model,
    images: Any,
    maps: Any,
    *,
    class_index: Any = None,
    most_relevant_first: bool = True,
    percents: Sequence[float] = (10, 20, 30, 40, 50, 60, 70, 80, 90),
    noise: float = 0.01,
    seed: int = 0,
    output: str | int | None = None,
    input: str | int | None = None,
    other_inputs: Any = None,
) -> Road:
    """ROAD (Rong et al. 2022): remove p% of the pixels, the map's most relevant first (or least), fill them by
    noisy linear imputation, and read the class score. input, other_inputs: for a model with several inputs."""
    percents = _check_percents(percents)
    noise = _check_number(noise, "noise", 0)
    seed = _check_int(seed, "seed", 0)
    if not isinstance(most_relevant_first, (bool, np.bool_)):
        raise TypeError(f"most_relevant_first must be True or False, not {most_relevant_first!r}")
    setup = _setup(model, images, maps, class_index, output, input, other_inputs)
    rng = np.random.default_rng(seed)
    pixels = int(np.prod(setup.images.shape[1:3]))
    scores = np.empty((len(setup.images), len(percents)), np.float32)
    with progress.bar(len(setup.images), "ROAD"):
        for i, (image, ranks) in enumerate(zip(setup.images, setup.ranks)):
            progress.step(i, len(setup.images), "ROAD images")
            order = ranks if most_relevant_first else pixels - 1 - ranks
            filled = [
                noisy_linear_imputation(image, order < int(round(p / 100 * pixels)), noise, rng) for p in percents
            ]
            probs = setup.engine.class_probabilities(np.stack(filled), setup.output, setup.feed, image=i)
            scores[i] = probs[:, setup.classes[i]]
    return Road(percents, scores, most_relevant_first)


def _check_percents(percents: Any) -> np.ndarray:
    """ROAD's percentages: one or more finite numbers strictly between 0 and 100."""
    try:
        values = np.asarray(percents, np.float64)
    except (TypeError, ValueError):
        values = None
    valid = values is not None and values.ndim == 1 and len(values) > 0
    if not valid or not (np.isfinite(values) & (values > 0) & (values < 100)).all():
        given = percents if not isinstance(percents, np.ndarray) else percents.tolist()
        raise CAMError(
            f"percents must be one or more finite numbers above 0 and below 100 (percent of the pixels removed), "
            f"not {given!r}"
        )
    return values


def noisy_linear_imputation(
    image: np.ndarray, removed: np.ndarray, noise: float, rng: np.random.Generator
) -> np.ndarray:
    """Each removed pixel the weighted mean of its 8 neighbours (edge neighbours 1/6, corner 1/12, as in ROAD),
    solved for all removed pixels at once (a sparse linear system), plus Gaussian noise of std `noise`."""
    noise = _check_number(noise, "noise", 0)
    from scipy.sparse import coo_matrix
    from scipy.sparse.linalg import spsolve

    height, width = removed.shape
    index = -np.ones((height, width), np.int64)
    ys, xs = np.nonzero(removed)
    if not len(ys):
        return image.copy()
    index[ys, xs] = np.arange(len(ys))
    rows, cols, values = [np.arange(len(ys))], [np.arange(len(ys))], [np.ones(len(ys))]
    rhs = np.zeros((len(ys), image.shape[-1]))
    weight_sum = np.zeros(len(ys))
    for dy, dx, w in [
        (-1, 0, 1 / 6),
        (1, 0, 1 / 6),
        (0, -1, 1 / 6),
        (0, 1, 1 / 6),
        (-1, -1, 1 / 12),
        (-1, 1, 1 / 12),
        (1, -1, 1 / 12),
        (1, 1, 1 / 12),
    ]:
        ny, nx = ys + dy, xs + dx
        inside = (ny >= 0) & (ny < height) & (nx >= 0) & (nx < width)
        weight_sum[inside] += w
        unknown = inside.copy()
        unknown[inside] = removed[ny[inside], nx[inside]]
        known = inside & ~unknown
        rhs[known] += w * image[ny[known], nx[known]]
        rows.append(np.nonzero(unknown)[0])
        cols.append(index[ny[unknown], nx[unknown]])
        values.append(np.full(unknown.sum(), -w))
    # each removed pixel: x_p - sum_q (w_q / W_p) x_q = sum_known (w_q / W_p) v_q, W_p its neighbours' weights
    rows_all, cols_all = np.concatenate(rows), np.concatenate(cols)
    scale = np.concatenate([np.ones(len(ys))] + [1 / weight_sum[r] for r in rows[1:]])
    matrix = coo_matrix((np.concatenate(values) * scale, (rows_all, cols_all)), shape=(len(ys), len(ys))).tocsc()
    solved = spsolve(matrix, rhs / weight_sum[:, None])
    filled = image.copy()
    filled[ys, xs] = np.asarray(solved, np.float32).reshape(len(ys), -1) + rng.normal(
        0, noise, (len(ys), image.shape[-1])
    )
    return filled.astype(np.float32)


# -- localisation ----------------------------------------------------------------------------------------------


def region_mask(region: Any, shape: tuple[int, int]) -> np.ndarray:
    """A box (top, left, bottom, right), bottom and right exclusive, or a mask of `shape` -> bool (H, W)."""
    array = np.asarray(region)
    if array.shape == (4,):
        numbers = np.issubdtype(array.dtype, np.number) and not np.issubdtype(array.dtype, np.complexfloating)
        if not numbers or not np.isfinite(array).all() or array[2] <= max(array[0], 0) or array[3] <= max(array[1], 0):
            raise CAMError(
                f"the box {tuple(array.tolist())} is not one: give (top, left, bottom, right) in pixels, finite, with "
                "bottom > top and right > left (bottom and right exclusive; the box inside the image)"
            )
        top, left, bottom, right = (int(v) for v in array)
        mask = np.zeros(shape, bool)
        mask[max(top, 0) : bottom, max(left, 0) : right] = True
        return mask
    if array.shape != tuple(shape):
        raise CAMError(
            f"the region has shape {array.shape}; give a box (top, left, bottom, right) or a mask of the images' "
            f"(height, width) {tuple(shape)}"
        )
    return array.astype(bool)


def _maps_and_masks(images: Any, maps: Any, regions: Sequence[Any]) -> list[tuple[np.ndarray, np.ndarray]]:
    """(map at the images' size, region mask) per image, checked."""
    batch = model_batch(images)
    maps = _checked_maps(maps, batch)
    if len(regions) != len(batch):
        raise CAMError(f"{len(regions)} regions for {len(batch)} images; give one box or mask per image")
    size = batch.shape[1:3]
    return [(_resize(m, *size), region_mask(region, size)) for m, region in zip(maps, regions)]


def pointing_game(images: Any, maps: Any, regions: Sequence[Any], tolerance: int = 15) -> np.ndarray:
    """(N,) bool: the map's peak (at the images' size) lies within `tolerance` pixels of the region (Zhang et al.
    2016 use 15). `regions`: one box or mask per image."""
    tolerance = _check_int(tolerance, "tolerance", 0)
    hits = []
    for full, mask in _maps_and_masks(images, maps, regions):
        if tolerance > 0:
            kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * tolerance + 1, 2 * tolerance + 1))
            mask = cv2.dilate(mask.astype(np.uint8), kernel).astype(bool)
        hits.append(bool(mask[np.unravel_index(int(np.argmax(full)), full.shape)]))
    return np.array(hits)


def energy_pointing_game(images: Any, maps: Any, regions: Sequence[Any]) -> np.ndarray:
    """(N,) the share of each map's positive mass inside its region (Score-CAM's energy-based pointing game)."""
    shares = []
    for full, mask in _maps_and_masks(images, maps, regions):
        positive = np.maximum(full, 0)
        total = positive.sum()
        shares.append(float(positive[mask].sum() / total) if total > 0 else 0.0)
    return np.array(shares)


# -- sanity checks ---------------------------------------------------------------------------------------------


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman's rank correlation of two maps (average ranks for ties); 0 where either is constant."""
    from scipy.stats import rankdata

    ra, rb = rankdata(a.ravel()), rankdata(b.ravel())
    if ra.std() == 0 or rb.std() == 0:
        return 0.0
    return float(np.corrcoef(ra, rb)[0, 1])


@dataclasses.dataclass(frozen=True)
class Randomization:
    """Rank correlations of each image's map before and after randomisation: steps[k] names what was
    randomised (cumulatively), rho[k] (N,) per image, maps[k] (N, h, w) the maps after."""

    steps: list[str]
    rho: np.ndarray  # (steps, N)
    before: np.ndarray  # (N, h, w)
    maps: np.ndarray  # (steps, N, h, w)


def copy_model(model: keras.Model) -> keras.Model:
    """A copy with its own weights (the same values): the user's model is never changed."""
    try:
        copy = keras.models.clone_model(model)
    except Exception as exc:  # noqa: BLE001 - Keras refuses some models (subclassed ones): say so
        raise CAMError(
            f"the randomisation checks work on a copy of the model, and Keras could not copy this one ({type(exc).__name__}: "
            f"{str(exc).splitlines()[0] if str(exc) else ''}); pass copy= a function that returns a fresh copy"
        ) from None
    copy.set_weights(model.get_weights())
    return copy


def _reinitialise(layer: keras.layers.Layer, rng: np.random.Generator) -> None:
    """New values for a layer's trainable weights: its own initialisers where it names them (kernel, bias ...),
    else a normal draw with each weight's own spread."""
    for weight in layer.trainable_weights:
        short = weight.path.rsplit("/", 1)[-1] if hasattr(weight, "path") else weight.name
        initializer = getattr(layer, f"{short}_initializer", None)
        if initializer is not None:
            initializer = keras.initializers.get(initializer)
            config = initializer.get_config()
            if "seed" in config:  # drawn from `rng`, so that a check with the same seed gives the same numbers
                config["seed"] = int(rng.integers(2**31 - 1))
                initializer = type(initializer).from_config(config)
            value = initializer(weight.shape, dtype="float32")
            value = np.asarray(value)
            if not np.any(value):  # a zeros initialiser (biases): draw something, so the layer does change
                value = rng.normal(0, 0.01, weight.shape)
        else:
            value = rng.normal(0, float(np.std(weight.numpy())) or 0.01, weight.shape)
        weight.assign(np.asarray(value, np.float32))


def model_randomization(
    model: keras.Model,
    images: Any,
    *,
    layer: str | None = None,
    method: str = "gradcam",
    class_index: Any = None,
    steps: int | None = None,
    seed: int = 0,
    copy: Callable[[], keras.Model] | None = None,
    input: str | int | None = None,
    other_inputs: Any = None,
    **cam_options: Any,
) -> Randomization:
    """Cascading model-parameter randomisation (Adebayo et al. 2018) on a copy: layers with weights are
    re-initialised from the output down, one more at each step (`steps` of them, default all), and each image's
    map (same layer, method and class as before) is compared with its map before by Spearman's rho. A map that
    explains the model decorrelates (rho near 0) as its top layers lose their training. input, other_inputs:
    for a model with several inputs, as compute_cam takes them (the copy gets the same)."""
    from camwidget.api import compute_cam

    if steps is not None:
        _check_int(steps, "steps", 1)
    seed = _check_int(seed, "seed", 0)
    feed = make_feed(model, input, other_inputs)
    batch = model_batch(images)
    classes = _classes(model, batch, class_index, cam_options.get("output"), feed)
    fed = {"input": input, "other_inputs": other_inputs}
    before = compute_cam(model, batch, layer=layer, method=method, class_index=classes, **fed, **cam_options)
    copied = copy() if copy is not None else copy_model(model)
    with_weights = [(p, l) for p, l in _forward_layers(copied, batch.shape[1:], feed) if l.trainable_weights]
    chosen = list(reversed(with_weights))[: steps or len(with_weights)]
    rng = np.random.default_rng(seed)
    names, rhos, maps = [], [], []
    with progress.bar(len(chosen), "randomised layers"):
        for k, (path, randomised) in enumerate(chosen):
            progress.step(k, len(chosen), "randomised layers")
            _reinitialise(randomised, rng)
            after = compute_cam(copied, batch, layer=layer, method=method, class_index=classes, **fed, **cam_options)
            names.append(path)
            rhos.append([spearman(a, b) for a, b in zip(before, after)])
            maps.append(after)
    return Randomization(names, np.array(rhos), before, np.array(maps))


def _classes(
    model: keras.Model, batch: np.ndarray, class_index: Any, output: str | int | None, feed: Feed | None = None
) -> np.ndarray:
    """The class each image is explained for: as given, else the model's own top class (kept for the copies)."""
    engine = engine_for(model)
    engine.sync()
    layout = engine.layout(batch.shape[1:], feed)
    index = engine.output_index(layout, output)
    classes = class_vector(class_index, len(batch), num_classes(layout, index))
    if (classes < 0).any():
        top = engine.class_probabilities(batch, index, feed).argmax(axis=1)
        classes = np.where(classes < 0, top, classes)
    return classes.astype(np.int32)


def _train_feed(model: keras.Model, input: Any, train_other_inputs: Any, feed: Feed | None) -> Feed | None:
    """The training images' Feed for data_randomization: the images' input as for `images`, the others given."""
    if feed is not None and train_other_inputs is None:
        raise CAMError(
            f"the copy is trained on train_images, and the model also takes {', '.join(map(repr, feed.other_names))}: "
            "give their training values as train_other_inputs= (as other_inputs=, for the training images)"
        )
    if feed is None and train_other_inputs is not None:
        raise CAMError("train_other_inputs= is for a model with several inputs, with input= and other_inputs=")
    return None if feed is None else make_feed(model, input, train_other_inputs)


def _forward_layers(
    model: keras.Model, shape: tuple[int, ...], feed: Feed | None = None
) -> list[tuple[str, keras.layers.Layer]]:
    """Every layer (not model) of `model` in forward order, by path."""
    layout = engine_for(model).layout(shape, feed)
    return [(path, info.layer) for path, info in layout.layers.items()]


def data_randomization(
    model: keras.Model,
    train_images: Any,
    train_labels: Any,
    images: Any,
    *,
    epochs: int = 5,
    layer: str | None = None,
    method: str = "gradcam",
    seed: int = 0,
    copy: Callable[[], keras.Model] | None = None,
    input: str | int | None = None,
    other_inputs: Any = None,
    train_other_inputs: Any = None,
    **fit_options: Any,
) -> Randomization:
    """Data randomisation (Adebayo et al. 2018): a copy of the model, freshly initialised, trained on the
    training images with their labels shuffled; each image's map of the copy against the model's own (for the
    model's top class), by Spearman's rho. Maps that explain what the model learned decorrelate.
    input, other_inputs: for a model with several inputs, as compute_cam takes them, for `images`;
    train_other_inputs: the other inputs' values for `train_images` (one shared, or one row per training image)."""
    from camwidget.api import compute_cam

    epochs = _check_int(epochs, "epochs", 1)
    seed = _check_int(seed, "seed", 0)
    feed = make_feed(model, input, other_inputs)
    train_feed = _train_feed(model, input, train_other_inputs, feed)
    batch = model_batch(images)
    train = model_batch(train_images, "train_images")
    classes = _classes(model, batch, None, None, feed)
    fed = {"input": input, "other_inputs": other_inputs}
    before = compute_cam(model, batch, layer=layer, method=method, class_index=classes, **fed)
    copied = copy() if copy is not None else keras.models.clone_model(model)  # fresh weights
    rng = np.random.default_rng(seed)
    labels = np.asarray(train_labels)
    shuffled = labels[rng.permutation(len(labels))]
    loss = "sparse_categorical_crossentropy" if labels.ndim == 1 else "categorical_crossentropy"
    copied.compile(optimizer="adam", loss=loss)
    inputs = train if train_feed is None else train_feed.pack(train, train_feed.rows(len(train)))
    copied.fit(inputs, shuffled, epochs=epochs, verbose=0, **fit_options)
    after = compute_cam(copied, batch, layer=layer, method=method, class_index=classes, **fed)
    rho = np.array([[spearman(a, b) for a, b in zip(before, after)]])
    return Randomization(["labels shuffled"], rho, before, after[None])
