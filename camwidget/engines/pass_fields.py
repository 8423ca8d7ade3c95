"""What the engines' passes take whole: :class:`Scoring` (what a pass scores) and :class:`PerturbedCopies` (the
copies the deletion and insertion metrics score). The passes are declared once, in
:class:`camwidget.engines.base.Engine`, and hand these to each engine's own ``_capture``, ``_recapture`` and
``_perturbed_scores``."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from camwidget import progress
from camwidget.inputs.feed import Feed


@dataclass(frozen=True)
class Scoring:
    """What a pass scores: the engines' passes take it whole, so their signatures are written once, here.

    Attributes:
        classes: (N,) int32, -1 for each image's top class (see :func:`camwidget.engines.scores.class_vector`).
        output: the output's index (:meth:`Engine.output_index`).
        score: "auto" (the logits), "probability" or "rest".
        target: None, or a target of :mod:`camwidget.targets`: y = target(output) instead of a class's score.
        feed: the model's other inputs, for a model with several.
    """

    classes: np.ndarray
    output: int
    score: str = "auto"
    target: Any = None
    feed: Feed | None = None

    def __iter__(self) -> Iterator[Any]:
        """The fields in order, for ``classes, output, score, target, feed = scoring``."""
        return iter((self.classes, self.output, self.score, self.target, self.feed))


@dataclass(frozen=True)
class PerturbedCopies:
    """The copies the deletion and insertion metrics score, made inside the pass (see
    :meth:`Engine.perturbed_scores` for what each field is)."""

    images: Any
    baselines: Any
    ranks: Any
    rows: np.ndarray
    counts: np.ndarray
    classes: np.ndarray
    output: int
    insert: bool
    batch: int = 32
    feed: Feed | None = None

    def scored_in_batches(self, run: Callable[[np.ndarray, np.ndarray, np.ndarray], Any]) -> np.ndarray:
        """The copies' scores, `batch` copies per call of run(rows, counts, classes), each (batch,) int32 (the
        last call's padded with zeros, their scores dropped), with a progress step per call.

        Returns:
            (K,) float32: run's result for each copy.
        """
        scores = np.empty(len(self.rows), np.float32)
        for start in range(0, len(self.rows), self.batch):
            progress.step(start, len(self.rows), "perturbed copies")
            chunk = slice(start, start + self.batch)
            n = len(self.rows[chunk])

            def padded(values: np.ndarray) -> np.ndarray:
                out = np.zeros(self.batch, np.int32)
                out[:n] = values[chunk]
                return out

            result = run(padded(self.rows), padded(self.counts), padded(self.classes))
            scores[start : start + n] = np.asarray(result)[:n]
        return scores
