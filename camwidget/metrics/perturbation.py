"""Perturbation metrics: deletion and insertion (Petsiuk et al. 2018), average drop / increase in confidence
(Chattopadhay et al. 2018) and ROAD with noisy linear imputation (Rong et al. 2022); see the package's docstring
for the formulas and the choice of baseline."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any, TypedDict, Unpack

import keras
import numpy as np

from camwidget import progress
from camwidget.errors import CAMError
from camwidget.metrics.common import _CURVE_BATCH, _check_int, _check_number, _check_steps, _setup, baseline_of

# -- deletion and insertion ------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Curve:
    """A deletion or insertion curve per image.

    Attributes:
        kind: "deletion" or "insertion".
        fractions: (steps + 1,) the share of the pixels moved at each step, 0 to 1.
        scores: (N, steps + 1) the class's probability at each step.
        areas: (N,) the area under each image's curve (trapezoids on [0, 1]).
        area: their mean: deletion lower is better, insertion higher.
    """

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


class CurveOptions(TypedDict, total=False):
    """The options :func:`deletion` and :func:`insertion` share, each a keyword (defaults in brackets).

    Attributes:
        class_index: None (each image's top class) [None], an int, or one per image.
        steps: how many steps, at least 1 [100].
        baseline: "mean" (each image's mean colour) ["mean"], "blur", "zero", a number, or an array like the
            images.
        output: the output's name or index, for a model with several [None].
        input: for a model with several inputs, the one the images go to (a name or index) [None].
        other_inputs: the other inputs' values, as compute_cam takes them; each copy goes with its image's [None].
    """

    class_index: Any
    steps: int
    baseline: str | float | np.ndarray
    output: str | int | None
    input: str | int | None
    other_inputs: Any


def deletion(model: keras.Model, images: Any, maps: Any, **options: Unpack[CurveOptions]) -> Curve:
    """Deletion (Petsiuk et al. 2018): the class score as the most relevant pixels (by the map) are replaced.

    At step k, floor(k P / steps) of the P pixels, the map's most relevant first, are replaced by the baseline.
    A faithful map makes the score fall fast (a small area).

    Args:
        model: the Keras model (left as it is).
        images: (N, H, W, C) in the model's input space, or one (H, W, C).
        maps: (N, h, w) at any resolution (compute_cam's, or any method's); resized bilinearly to the images.
        **options: class_index, steps, baseline, output, input, other_inputs: see :class:`CurveOptions`.

    Returns:
        The :class:`Curve` (its area: lower is better).

    Raises:
        CAMError: images, maps, a class or an option that cannot be right, naming what would be.
        TypeError: an option that is not one of :class:`CurveOptions`.
    """
    return _curve("deletion", model, images, maps, options)


def insertion(model: keras.Model, images: Any, maps: Any, **options: Unpack[CurveOptions]) -> Curve:
    """Insertion (Petsiuk et al. 2018): from the baseline, the most relevant pixels put back first.

    At step k, floor(k P / steps) of the P pixels are the image's, the rest the baseline's. A faithful map makes
    the score rise fast (a large area).

    Args:
        model, images, maps, **options: as :func:`deletion`.

    Returns:
        The :class:`Curve` (its area: higher is better).

    Raises:
        CAMError, TypeError: as :func:`deletion`.
    """
    return _curve("insertion", model, images, maps, options)


def _curve(kind: str, model: keras.Model, images: Any, maps: Any, options: CurveOptions) -> Curve:
    unknown = sorted(set(options) - set(CurveOptions.__annotations__))
    if unknown:
        raise TypeError(
            f"{kind}() got unknown option(s) {', '.join(unknown)}; it takes {', '.join(CurveOptions.__annotations__)}"
        )
    steps = options.get("steps", 100)
    baseline = options.get("baseline", "mean")
    feed = (options.get("output"), options.get("input"), options.get("other_inputs"))
    steps = _check_steps(steps)
    setup = _setup(model, images, maps, options.get("class_index"), *feed)
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
    """Average drop and increase in confidence (Chattopadhay et al. 2018), in percent, and the scores.

    Attributes:
        average_drop: AD, percent (lower is better).
        increase_in_confidence: IC, percent (higher is better).
        original: (N,) Y, the class's score on the image.
        explained: (N,) O, on the image times its map.
    """

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
    """Average drop and increase in confidence: AD = 100 mean max(0, Y - O) / Y, IC = 100 mean [O > Y].

    O is the score of the image multiplied by its map (resized, scaled to [0, 1] by its max: the paper's
    "explanation map"), Y the score of the image.

    Args:
        model, images, maps, class_index: as :func:`deletion`.
        output, input, other_inputs: as :func:`deletion`.

    Returns:
        The :class:`Confidence`.

    Raises:
        CAMError: images, maps, a class or an option that cannot be right, naming what would be.
    """
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
    """ROAD scores after removing a share of the pixels, most or least relevant first.

    Attributes:
        percents: the percentages removed.
        scores: (N, len(percents)) the class's probability after each.
        most_relevant_first: MoRF (True) or LeRF (False).
        mean: the mean score: low is good under MoRF, high under LeRF.
    """

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
    """ROAD (Rong et al. 2022): remove p% of the pixels and fill them so that the filling leaks no shape.

    The map's most relevant pixels first (or least), filled by :func:`noisy_linear_imputation`, then the class
    score is read.

    Args:
        model, images, maps, class_index: as :func:`deletion`.
        most_relevant_first: MoRF (True) or LeRF (False).
        percents: the percentages to remove, each above 0 and below 100.
        noise: the imputation's Gaussian noise (std, at least 0).
        seed: the noise's seed (an int, at least 0).
        output, input, other_inputs: as :func:`deletion`.

    Returns:
        The :class:`Road`.

    Raises:
        CAMError: images, maps, a class, percents or noise that cannot be right, naming what would be.
        TypeError: most_relevant_first not True or False.
    """
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
    """Fill removed pixels with the weighted mean of their neighbours, plus noise (ROAD's imputation).

    Each removed pixel is the weighted mean of its 8 neighbours (edge neighbours 1/6, corner 1/12, as in ROAD),
    solved for all removed pixels at once (a sparse linear system), plus Gaussian noise of std `noise`.

    Args:
        image: (H, W, C).
        removed: (H, W) bool, the pixels to fill.
        noise: the noise's std (at least 0).
        rng: the noise's generator.

    Returns:
        A filled copy of the image.

    Raises:
        CAMError: noise not a finite number of at least 0.
    """
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
