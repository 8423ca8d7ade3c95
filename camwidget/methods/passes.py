"""The passes a method makes beyond the one capture it is given: the layer's activations with channels changed
run through the layers after it (Ablation-CAM), the gradients of other classes (Finer-CAM) and of noisy copies
of the input (Smooth Grad-CAM++). Each goes through the engine's own compiled passes, so the model is never
changed and nothing is traced twice.

The methods read A and G on a grid (N, a, b, K) (see ``camwidget.explain.as_grid``): a signal's (N, L, K) as
(N, L, 1, K), a volume's (N, D, H, W, K) as (N, D*H, W, K), tokens without their leading ones. The helpers here
turn the engine's arrays into that grid and back.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from camwidget.engines import LayerCapture
from camwidget.errors import CAMError
from camwidget.methods.registry import MethodInputs

# Changed copies per tail pass: fixed, so the last (padded) batch does not retrace a JAX pass; the layers after a
# late layer are a small part of the model, so 16 copies cost about what one whole pass does on VGG16.
TAIL_BATCH = 16


def to_grid(x: np.ndarray, inputs: MethodInputs) -> np.ndarray:
    """An engine's (N, *positions, K) array at the layer -> the methods' grid (N, a, b, K)."""
    geometry = inputs.layer.geometry
    n, k = x.shape[0], x.shape[-1]
    if geometry is None or geometry.kind == "image":
        return x
    if geometry.kind == "tokens":
        return x[:, geometry.leading :].reshape(n, *inputs.capture.activations.shape[1:3], k)
    if geometry.kind == "signal":
        return x[:, :, None, :]
    return x.reshape(n, x.shape[1] * x.shape[2], x.shape[3], k)  # a volume


def from_grid(grid: np.ndarray, inputs: MethodInputs, method: str) -> np.ndarray:
    """The methods' grid (M, a, b, K) -> the layer's own (M, *positions, K), as the layers after it take it.

    Raises:
        CAMError: a token layer with leading tokens (class, register tokens): the grid leaves them out, so
            the layer's output cannot be rebuilt from it.
    """
    geometry = inputs.layer.geometry
    m, k = grid.shape[0], grid.shape[-1]
    if geometry is None or geometry.kind == "image":
        return grid
    if geometry.kind == "tokens":
        if geometry.leading:
            raise CAMError(
                f"{method} runs the layers after {inputs.layer.path!r} on changed copies of its output, and this "
                f"token layer has {geometry.leading} leading token(s) (class, register) outside its patch grid, "
                "which the copies would lose; use a gradient method such as 'gradcam' or 'layercam'"
            )
        return grid.reshape(m, -1, k)
    if geometry.kind == "signal":
        return grid[:, :, 0, :]
    shape = inputs.layer.shape
    if shape is None or any(d is None for d in shape):
        raise CAMError(f"{method} needs the volume layer {inputs.layer.path!r} to have a fixed shape")
    return grid.reshape(m, *[int(d) for d in shape[:-1]], k)  # type: ignore[misc]


def check_class_scores(inputs: MethodInputs, method: str) -> None:
    """The capture explains a class (not a target=, whose single score these methods cannot rerun)."""
    check_class_probabilities(inputs.capture.probabilities, method)


def check_class_probabilities(probabilities: np.ndarray, method: str) -> None:
    """A pass's probabilities are a class's (N, C >= 2), not a target's single score.

    Raises:
        CAMError: they are not.
    """
    if probabilities.ndim != 2 or probabilities.shape[1] < 2:
        raise CAMError(
            f"{method} reruns the model and reads a class's score from its output, so it explains a class and "
            "cannot take target=; use a gradient method such as 'gradcam' with a target"
        )


def tail_class_scores(inputs: MethodInputs, layer_values: np.ndarray, image: int, method: str) -> np.ndarray:
    """(M,) the score y_c (the differentiated one: the logit under score="auto") of image `image`'s class after
    only the layers that follow the layer, run on M versions of its output (M, *positions, K), in fixed-size
    batches (the engine's tail pass; its gradients are not used).

    Raises:
        CAMError: the model's structure does not show the layers after the layer (subclassed, a layer used
            twice, several inputs).
    """
    c = int(inputs.capture.class_index[image])
    results = []
    for start in range(0, len(layer_values), TAIL_BATCH):
        chunk = layer_values[start : start + TAIL_BATCH]
        padded = np.concatenate([chunk, np.repeat(chunk[-1:], TAIL_BATCH - len(chunk), axis=0)])
        got = inputs.engine.recapture(
            padded.astype(np.float32),
            inputs.layer,
            np.full(len(padded), c, np.int32),
            inputs.output,
            inputs.score,
            inputs.feed,
            tuple(inputs.images.shape[1:]),
        )
        if got is None:
            raise CAMError(
                f"{method} runs only the layers after {inputs.layer.path!r} on changed copies of its output, and "
                "this model's structure (subclassed, a layer used twice, or several inputs) does not show those "
                "layers; use 'scorecam', which reruns the whole model, or a gradient method"
            )
        results.append(got.scores[: len(chunk), c])
    return np.concatenate(results).astype(np.float64)


def capture_at_layer(inputs: MethodInputs, x: np.ndarray, classes: np.ndarray, copies: int = 1) -> LayerCapture:
    """A whole pass of images `x` for `classes` at the method's layer: A and G on the methods' grid.

    Args:
        inputs: what the method was given.
        x: the images, `copies` versions of the method's batch one after the other (copy-major).
        classes: (len(x),) the class of each.
        copies: how many versions of the batch `x` holds: a model's other inputs given per image go with each.

    Returns:
        The :class:`LayerCapture` of the pass at the layer.
    """
    feed = inputs.feed
    if feed is not None and copies > 1:
        feed = dataclasses.replace(
            feed, others=tuple(o if len(o) == 1 else np.concatenate([o] * copies) for o in feed.others)
        )
    got = inputs.engine.capture(
        x.astype(np.float32), [inputs.layer], classes.astype(np.int32), inputs.output, inputs.score, None, feed
    ).at(inputs.layer.path)
    return LayerCapture(
        to_grid(got.activations, inputs), to_grid(got.gradients, inputs), got.scores, got.probabilities, got.class_index
    )


def gradients_for(inputs: MethodInputs, classes: np.ndarray) -> np.ndarray:
    """G = dy_c/dA on the methods' grid for other classes (N,) of the same images: the tail pass from the
    captured A where the model shows its layers after the layer, a whole pass otherwise."""
    a = inputs.capture.activations
    got = None
    if inputs.layer.geometry is None or inputs.layer.geometry.kind != "tokens" or not inputs.layer.geometry.leading:
        got = inputs.engine.recapture(
            from_grid(a, inputs, "").astype(np.float32),
            inputs.layer,
            classes.astype(np.int32),
            inputs.output,
            inputs.score,
            inputs.feed,
            tuple(inputs.images.shape[1:]),
        )
    if got is not None:
        return to_grid(got.gradients, inputs)
    return capture_at_layer(inputs, inputs.images, classes).gradients
