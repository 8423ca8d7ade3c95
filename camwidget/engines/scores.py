"""Class scores of a model output, written once in ``keras.ops`` for every engine (TensorFlow, JAX, torch).

A pass differentiates one number per image, y_c: the score of class c in the model's output. What that score
is depends on the output: a class vector (N, C), a single sigmoid unit (two classes), or scores per position
(a segmentation, (N, H, W, C)); and on ``score``: "auto" takes the logits (the value before a final softmax or
sigmoid), "probability" the output itself, "rest" the logit plus the log-probability (Shapley-CAM's ReST). A target (see :mod:`camwidget.targets`) replaces the class score
by a function of the output.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from keras import ops

from camwidget import targets
from camwidget.engines.layout import ModelLayout
from camwidget.errors import CAMError

SCORES = ("auto", "probability", "rest")


def is_per_position(shape: tuple[int | None, ...], input_rank: int) -> bool:
    """Whether an output gives class scores per position with the input's own rank.

    Args:
        shape: the output's shape without the batch axis.
        input_rank: the rank of one input item (3 for images (H, W, C), 2 for signals (L, C)).

    Returns:
        True for (N, H, W, C) of images or (N, L, C) of signals (a segmentation); False for (N, C) and for a
        detector's (N, boxes, 4 + C).
    """
    return len(shape) == input_rank >= 2 and any(d != 1 for d in shape[:-1]) and shape[-1] is not None


def class_scores(
    y: Any, before: Any, activation: str | None, score: str, classes: Any, input_rank: int = 3
) -> tuple[Any, Any, Any, Any]:
    """The scores of one model output, and the one differentiated per image.

    score "auto" takes the value before a final softmax or sigmoid (the logits): the softmax saturates, and
    its gradient mixes in every other class. A single sigmoid unit is two classes: 0 scored -z, 1 scored z.
    "rest" (Cai 2025's Residual Softmax Target-class, pytorch-grad-cam's ClassifierOutputReST) is
    z_c + log p_c = z_c - cross-entropy(c): the logit, which grows without bound, plus the log-probability,
    which rewards what lowers the other classes; log p is the log-softmax of the logits (of a final sigmoid:
    log sigmoid per class). A per-position output is scored by :func:`region_scores`.

    Args:
        y: the model's output, (N, C) or (N, *positions, C).
        before: the same output before its final softmax or sigmoid (`y` itself where it has none).
        activation: "softmax", "sigmoid" or None: the output's final activation.
        score: "auto" (the logits), "probability" (the output) or "rest" (the logits plus the log-probabilities).
        classes: (N,) int: the class of each image, -1 for its top class.
        input_rank: the rank of one input item, to tell a per-position output.

    Returns:
        (scores (N, C), probabilities (N, C), classes (N,) with -1 resolved, the chosen scores y_c (N,)).

    Raises:
        CAMError: score "rest" on a per-position output (it is a score of one class vector).
    """
    classes = ops.cast(classes, "int32")
    if is_per_position(tuple(y.shape[1:]), input_rank):
        if score == "rest":
            raise CAMError('score="rest" scores one class vector per image; for a per-position output use "auto"')
        return region_scores(y, before, activation, score, classes)
    n = ops.shape(y)[0]
    probs = ops.reshape(ops.cast(y, "float32"), (n, -1))
    logits = ops.reshape(ops.cast(before, "float32"), (n, -1))
    scores = probs if score == "probability" else logits
    if score == "rest":
        scores = logits - ops.softplus(-logits) if activation == "sigmoid" else logits + ops.log_softmax(logits, axis=1)
    if activation == "sigmoid" and all(d == 1 for d in y.shape[1:]):
        probs = ops.concatenate([1.0 - probs, probs], axis=1)
        if score == "rest":  # class 0: -z + log(1 - sigmoid(z)) = -z - softplus(z)
            scores = ops.concatenate([-logits - ops.softplus(logits), scores], axis=1)
        else:
            scores = ops.concatenate([-scores, scores], axis=1) if score == "auto" else probs
    top = ops.cast(ops.argmax(probs, axis=1), "int32")
    classes = ops.where(classes < 0, top, classes)
    chosen = ops.take_along_axis(scores, classes[:, None], axis=1)[:, 0]
    return scores, probs, classes, chosen


def region_scores(y: Any, before: Any, activation: str | None, score: str, classes: Any) -> tuple[Any, Any, Any, Any]:
    """A segmentation output's class scores: class c scored over the positions predicted as c.

    y_c = sum_p [argmax_k y_pk = c] s_pc, s the logits under "auto" (pytorch-grad-cam's
    SemanticSegmentationTarget with the predicted mask; the mask is a constant of the gradient). The
    "probabilities" shown are each class's share of the positions; -1 picks the class that covers most.
    A single sigmoid unit is two classes (background scored -z).

    Args:
        y: the output (N, *positions, C).
        before: the output before its final softmax or sigmoid.
        activation: "softmax", "sigmoid" or None.
        score: "auto" or "probability".
        classes: (N,) int32, -1 for the class that covers most.

    Returns:
        (scores (N, C), shares (N, C), classes (N,), the chosen scores (N,)).
    """
    n, c = ops.shape(y)[0], y.shape[-1]
    probs = ops.reshape(ops.cast(y, "float32"), (n, -1, c))
    values = ops.reshape(ops.cast(before if score == "auto" else y, "float32"), (n, -1, c))
    if activation == "sigmoid" and c == 1:
        probs = ops.concatenate([1.0 - probs, probs], axis=2)
        values = ops.concatenate([-values, values], axis=2) if score == "auto" else probs
    predicted = ops.stop_gradient(ops.one_hot(ops.argmax(probs, axis=2), probs.shape[-1]))
    share = ops.mean(predicted, axis=1)
    scores = ops.sum(predicted * values, axis=1)
    classes = ops.where(classes < 0, ops.cast(ops.argmax(share, axis=1), "int32"), classes)
    chosen = ops.take_along_axis(scores, classes[:, None], axis=1)[:, 0]
    return scores, share, classes, chosen


def output_scores(
    y: Any, before: Any, activation: str | None, score: str, classes: Any, target: Any, input_rank: int = 3
) -> tuple[Any, Any, Any, Any]:
    """:func:`class_scores`, or for a target: y = target(the output, its logits under "auto").

    Args:
        y, before, activation, score, classes, input_rank: as :func:`class_scores`.
        target: None (a class score), or a target of :mod:`camwidget.targets`.

    Returns:
        As :func:`class_scores`; for a target the scores and probabilities are y itself (N, 1) and the
        classes zeros.
    """
    if target is None:
        return class_scores(y, before, activation, score, classes, input_rank)
    if score == "rest":
        raise CAMError('score="rest" is a class\'s score (z_c + log p_c); with target= use "auto" or "probability"')
    value = ops.cast(before if score == "auto" else y, "float32")
    chosen = targets.target_scores(target, value)
    column = chosen[:, None]
    return column, column, ops.zeros_like(ops.cast(classes, "int32")), chosen


def probabilities(y: Any, activation: str | None, input_rank: int) -> Any:
    """(N, C) class probabilities of an output: its own softmax or sigmoid, or a softmax over it where it has
    none (what Score-CAM and the deletion/insertion metrics score)."""
    batch = ops.shape(y)[0]
    _, probs, _, _ = class_scores(y, y, activation, "probability", ops.full((batch,), -1, "int32"), input_rank)
    return probs if activation else ops.softmax(probs, axis=-1)


def num_classes(layout: ModelLayout, output: int) -> int:
    """How many classes an output scores (a single sigmoid unit counts as two).

    Args:
        layout: the model's dry-run layout.
        output: the output's index.

    Returns:
        The number of classes.

    Raises:
        CAMError: the output is not one score per class (nor per position and class).
    """
    shape = layout.output_shapes[output]
    per_position = is_per_position(shape, len(layout.input_shape))
    if (shape and shape[-1] is None) or (any(d != 1 for d in shape[:-1]) and not per_position):
        raise CAMError(
            f"output {layout.output_names[output]!r} has shape (N, {', '.join(map(str, shape))}); camwidget "
            "explains outputs that give one score per class, shape (N, classes) (singleton axes are fine), or "
            "per position (N, H, W, classes); for any other output give target= a function of it"
        )
    n = int(shape[-1]) if shape else 1
    return 2 if n == 1 and layout.output_activations[output] == "sigmoid" else n


def class_vector(class_index: Any, n_images: int, n_classes: int) -> np.ndarray:
    """A class_index as a user gives it, as the int32 (N,) vector the passes take: ``Class.of(class_index)``'s
    :meth:`camwidget.targets.Class.vector`.

    Args:
        class_index: None (each image's top class), an int, or one int per image.
        n_images: N.
        n_classes: how many classes the output scores.

    Returns:
        int32 (N,), -1 meaning "this image's top class".

    Raises:
        TypeError: class_index is not an int, a sequence of ints or None.
        CAMError: a class is out of range, or the count is not one per image.
    """
    return targets.Class.of(class_index).vector(n_images, n_classes)
