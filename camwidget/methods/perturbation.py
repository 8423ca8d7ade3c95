"""The perturbation family: channels weighed by what the class score does when the input is masked by them
(Score-CAM, SS-CAM, IS-CAM: one batched path) or when they are removed (Ablation-CAM). No gradients."""

from __future__ import annotations

import cv2
import numpy as np

from camwidget.errors import CAMError
from camwidget.methods.passes import check_class_scores, from_grid, tail_class_scores
from camwidget.methods.registry import EPS, MethodInputs, number_in, option, register

# the methods this family registers, in the order the Method dropdown lists them
NAMES = ("scorecam", "sscam", "iscam", "ablation-cam")
FAMILY = "perturbation"
SEED = 0  # SS-CAM's noise: the same map for the same input, every run


@register(
    "scorecam", "Score-CAM", cost="1 pass per channel (max_channels= bounds it)", class_only=True, image_only=True
)
def scorecam(inputs: MethodInputs) -> np.ndarray:
    """Score-CAM (Wang et al. 2020), as its authors' code does it: each channel, upsampled to the input
    and scaled to [0, 1], masks the input; w_k = p_c(X * M_k), the class probability of the masked input
    (a softmax over the classes); T_k = w_k A_k. No gradients. Masks run in batches, one forward pass each.

    `max_channels` keeps only the channels whose activations vary most over the image (the "Faster
    Score-CAM" bound that tf-keras-vis calls max_N); the others get weight 0.
    """
    return channel_weighted(inputs, "Score-CAM", lambda image, masks, score: score(image * masks))


@register(
    "sscam",
    "SS-CAM",
    cost="samples passes per channel (max_channels= bounds the channels)",
    class_only=True,
    image_only=True,
    options={
        "samples": option(10, number_in("samples", 1, 1000, whole=True)),
        "noise": option(2.0, number_in("noise", 0.0, 100.0, low_open=True)),
    },
)
def sscam(inputs: MethodInputs, samples: int, noise: float) -> np.ndarray:
    """SS-CAM (Wang et al. 2020, "SS-CAM: Smoothed Score-CAM"): Score-CAM with each channel's mask smoothed by
    noise, w_k = (1/n) sum_m p_c(X * (M_k + d_m)), d_m ~ N(0, noise^2) drawn per mask and position (seeded),
    n = `samples`; T_k = w_k A_k. M_k is Score-CAM's mask (channel k upsampled and scaled to [0, 1]) and p_c the
    class probability, as camwidget's Score-CAM (torch-cam 0.5 weighs by a softmax over channels of the logit
    gains instead, and draws 35 samples by default; 10 here, since each costs a pass per channel).
    The noise smooths the weights of channels whose masks sit on a sharp edge of the score."""
    check_class_scores(inputs, "SS-CAM")
    rng = np.random.default_rng(SEED)

    def weigh(image: np.ndarray, masks: np.ndarray, score) -> np.ndarray:
        total = np.zeros(len(masks))
        for _ in range(samples):
            total += score(image * (masks + rng.normal(0.0, noise, masks.shape).astype(np.float32)))
        return total / samples

    return channel_weighted(inputs, "SS-CAM", weigh)


@register(
    "iscam",
    "IS-CAM",
    cost="steps passes per channel (max_channels= bounds the channels)",
    class_only=True,
    image_only=True,
    options={"steps": option(10, number_in("steps", 1, 1000, whole=True))},
)
def iscam(inputs: MethodInputs, steps: int) -> np.ndarray:
    """IS-CAM (Naidu et al. 2020, "IS-CAM: Integrated Score-CAM"): Score-CAM's weight integrated along the path
    from a black input to the masked one, w_k = (1/n) sum_{i=1..n} p_c(X * (i/n) M_k), n = `steps`; T_k = w_k A_k.
    M_k and p_c as camwidget's Score-CAM (torch-cam 0.5 scales its i-th input by the running sum of the i/n and
    weighs by a softmax over channels of the logit gains)."""
    check_class_scores(inputs, "IS-CAM")

    def weigh(image: np.ndarray, masks: np.ndarray, score) -> np.ndarray:
        return sum(score(image * (masks * np.float32(i / steps))) for i in range(1, steps + 1)) / steps

    return channel_weighted(inputs, "IS-CAM", weigh)


@register(
    "ablation-cam", "Ablation-CAM", cost="1 pass + 1 pass of the layers after the layer per channel", class_only=True
)
def ablation_cam(inputs: MethodInputs) -> np.ndarray:
    """Ablation-CAM (Desai & Ramaswamy 2020): each channel k of the layer set to 0 in turn, the layers after it
    run on the result, and w_k = (y_c - y_c^k) / |y_c|, the share of the class score y_c (the logit under
    score="auto") that is lost without the channel; T_k = w_k A_k. No gradients. The copies run in batches
    through the layers after the layer only. `max_channels` ablates only the channels whose activations vary
    most over the image (the others get weight 0, as pytorch-grad-cam's ratio_channels_to_ablate does).

    Where camwidget departs from the paper and pytorch-grad-cam 1.5.7: they divide by y_c, which turns every
    weight's sign, and so the map, inside out when the score is negative, as a logit can be for the top class
    (on tests/test_localization.py's model that put the peak on the object in 37% of images instead of all);
    |y_c| keeps the sign of the loss. pytorch-grad-cam also sets an ablated channel to min(A) - 1e7 where A
    has negative values; the paper (and camwidget) to 0, so the two agree after a ReLU."""
    check_class_scores(inputs, "Ablation-CAM")
    c = inputs.capture
    n = c.activations.shape[0]
    terms = np.zeros_like(c.activations)
    for i in range(n):
        acts = c.activations[i]
        channels = _kept_channels(acts, inputs.max_channels)
        copies = np.repeat(acts[None], len(channels), axis=0)
        copies[np.arange(len(channels)), ..., channels] = 0.0
        ablated = tail_class_scores(inputs, from_grid(copies, inputs, "Ablation-CAM"), i, "Ablation-CAM")
        original = float(c.scores[i, int(c.class_index[i])])
        weights = (original - ablated) / max(abs(original), EPS)
        terms[i][..., channels] = acts[..., channels] * weights.astype(np.float32)
    return terms


def channel_weighted(inputs: MethodInputs, method: str, weigh) -> np.ndarray:
    """The Score-CAM family's one batched path: for each image, the masks M_k of its channels (upsampled to
    the input, scaled to [0, 1]), w = weigh(image, masks, score) where score(masked (k', H, W, C)) -> (k',)
    is the class probability of each masked input (a fixed-size batched pass each), and T_k = w_k A_k.

    Raises:
        CAMError: the layer is not an image map (the masks are pictures).
    """
    geometry = inputs.layer.geometry
    if geometry is not None and geometry.kind not in ("image", "tokens"):
        raise CAMError(
            f"{method} masks the input with each channel upsampled to a picture, so it works on image models; "
            f"layer {inputs.layer.path!r} is a {geometry.kind} map; use a gradient method such as 'gradcam'"
        )
    c = inputs.capture
    n = c.activations.shape[0]
    H, W = inputs.images.shape[1:3]
    terms = np.zeros_like(c.activations)
    for i in range(n):
        acts = c.activations[i]
        channels = _kept_channels(acts, inputs.max_channels)
        masks = _upsampled_unit_masks(acts[..., channels], H, W)[..., None]  # (k', H, W, 1)
        chosen = int(c.class_index[i])

        def score(masked: np.ndarray, i: int = i, chosen: int = chosen) -> np.ndarray:
            probs = inputs.engine.class_probabilities(masked.astype(np.float32), inputs.output, inputs.feed, i)
            return probs[:, chosen].astype(np.float64)

        weights = weigh(inputs.images[i][None], masks, score)
        terms[i][..., channels] = acts[..., channels] * np.asarray(weights, np.float32)
    return terms


def _kept_channels(acts: np.ndarray, max_channels: int | None) -> np.ndarray:
    """Every channel, or the `max_channels` whose activations vary most over the positions (stable order)."""
    k = acts.shape[-1]
    if max_channels is None or max_channels >= k:
        return np.arange(k)
    return np.argsort(-acts.reshape(-1, k).std(axis=0), kind="stable")[:max_channels]


def _upsampled_unit_masks(acts: np.ndarray, height: int, width: int) -> np.ndarray:
    """(h, w, k) -> (k, height, width): each channel resized bilinearly and scaled to [0, 1]."""
    up = np.stack(
        [cv2.resize(acts[..., j], (width, height), interpolation=cv2.INTER_LINEAR) for j in range(acts.shape[-1])]
    )
    low = up.min(axis=(1, 2), keepdims=True)
    high = up.max(axis=(1, 2), keepdims=True)
    return ((up - low) / (high - low + EPS)).astype(np.float32)
