"""The contrastive family: why this class and not the ones most like it."""

from __future__ import annotations

from typing import Any

import numpy as np

from camwidget.errors import CAMError
from camwidget.methods.passes import check_class_scores, gradients_for
from camwidget.methods.registry import METHODS, MethodInputs, Option, number_in, one_of, option, register

# the methods this family registers, in the order the Method dropdown lists them
NAMES = ("finer-cam",)
FAMILY = "contrastive"
BASES = ("gradcam", "gradcam++", "layercam")


def _check_references(value: Any) -> tuple[int, ...] | None:
    """None, or the reference classes: one or more class indices (ints >= 0)."""
    if value is None:
        return None
    items = (value,) if isinstance(value, (int, np.integer)) else value
    if (
        not isinstance(items, (tuple, list))
        or not items
        or not all(isinstance(c, (int, np.integer)) and not isinstance(c, bool) and c >= 0 for c in items)
    ):
        raise CAMError(f"references must be None or one or more class indices (ints >= 0), not {value!r}")
    return tuple(int(c) for c in items)


@register(
    "finer-cam",
    "Finer-CAM",
    cost="1 pass + top passes of the layers after the layer",
    class_only=True,
    options={
        "base": option("gradcam", one_of("base", BASES)),
        "gamma": option(0.6, number_in("gamma", 0.0, 10.0)),
        "top": option(3, number_in("top", 1, 1000, whole=True)),
        "references": Option(None, _check_references, "None or one or more class indices"),
    },
)
def finer_cam(
    inputs: MethodInputs, base: str, gamma: float, top: int, references: tuple[int, ...] | None
) -> np.ndarray:
    """Finer-CAM (Zhang et al. 2025), a wrapper over Grad-CAM, Grad-CAM++ or Layer-CAM (`base`): the base
    method's terms T(A, G') for the score y_c - gamma * (1/T) sum_j y_j, whose gradient is
    G' = G_c - gamma * (1/T) sum_j G_j; the y_j are the T = `top` classes whose scores (logits under
    score="auto") are nearest y_c, |y_j - y_c| smallest (j != c), or the classes given as `references`.
    Subtracting what the similar classes share leaves what tells class c from them ("this breed, not that
    one"). The paper's defaults: gamma = 0.6, T = 3 (fewer where the model has fewer other classes).
    pytorch-grad-cam 1.5.7's FinerCAM weighs the references by their softmax probabilities instead of 1/T.

    Raises:
        CAMError: a reference is the explained class or not a class of the output, or the output has one class.
    """
    check_class_scores(inputs, "Finer-CAM")
    c = inputs.capture
    n, n_classes = c.scores.shape
    explained = c.class_index.astype(int)
    if references is not None:
        bad = [r for r in references if r >= n_classes]
        if bad:
            raise CAMError(f"references must be classes of the output (0 to {n_classes - 1}), not {bad[0]}")
        clash = sorted({int(e) for e in explained} & set(references))
        if clash:
            raise CAMError(f"references must not include the class being explained ({clash[0]})")
        chosen = np.tile(np.array(references, int), (n, 1))
    else:
        if n_classes < 2:
            raise CAMError("Finer-CAM compares a class with others, and this output has one class")
        distance = np.abs(c.scores.astype(np.float64) - c.scores[np.arange(n), explained][:, None])
        distance[np.arange(n), explained] = np.inf  # never the class itself
        chosen = np.argsort(distance, axis=1, kind="stable")[:, : min(top, n_classes - 1)]
    mean_reference = sum(gradients_for(inputs, chosen[:, j]).astype(np.float64) for j in range(chosen.shape[1]))
    g = c.gradients.astype(np.float64) - gamma * mean_reference / chosen.shape[1]
    formula = METHODS[base].formula
    assert formula is not None
    return np.asarray(formula(c.activations.astype(np.float64), g, np), np.float32)
