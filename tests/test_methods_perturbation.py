"""camwidget.methods.perturbation: Score-CAM equals its formula (each channel's upsampled, [0, 1]-scaled map as
a mask, weighted by the masked input's class probability), keeps its most varied channels under max_channels,
and agrees with tf-keras-vis where the masks need no resizing."""

from __future__ import annotations

import numpy as np
import pytest
from keras import ops
from reference import CLASSES, as_numpy, assert_close, relu_max, split, tf_keras_vis_map

import camwidget as cw


def ref_scorecam(model, layer, x, classes, keep=None):
    features, _ = split(model, layer)
    A = as_numpy(features(x))
    maps = []
    for n in range(len(x)):
        a = A[n]
        channels = range(a.shape[-1]) if keep is None else keep[n]
        m = np.zeros(a.shape[:2])
        for c in channels:
            up = as_numpy(ops.image.resize(a[..., c : c + 1][None], x.shape[1:3], interpolation="bilinear"))[0, ..., 0]
            mask = (up - up.min()) / (up.max() - up.min() + 1e-7)
            probs = as_numpy(model(x[n : n + 1] * mask[None, ..., None]))[0]  # the model's own softmax
            m += probs[classes[n]] * a[..., c]
        maps.append(m)
    return relu_max(np.array(maps))


@pytest.mark.parametrize("layer", ["conv_a", "conv_c"])
def test_scorecam_matches_its_formula(model, x, layer):
    assert_close(
        cw.compute_cam(model, x, layer=layer, method="scorecam", class_index=CLASSES),
        ref_scorecam(model, layer, x, CLASSES),
    )


def test_scorecam_channel_bound_keeps_the_most_varied_channels(model, x):
    features, _ = split(model, "conv_b")
    A = as_numpy(features(x))
    keep = [np.argsort(-a.reshape(-1, a.shape[-1]).std(axis=0), kind="stable")[:5] for a in A]
    cam = cw.compute_cam(model, x, layer="conv_b", method="scorecam", class_index=CLASSES, max_channels=5)
    assert_close(cam, ref_scorecam(model, "conv_b", x, CLASSES, keep))


@pytest.mark.tensorflow_only
def test_scorecam_matches_tf_keras_vis_where_masks_need_no_resizing(model, x):
    """tf-keras-vis also weights each channel by the masked input's class probability; it resizes masks
    with scipy's zoom where we resize bilinearly, so compare at conv_a, which has the input's size."""
    from tf_keras_vis.scorecam import Scorecam

    peer = tf_keras_vis_map(model, Scorecam, "conv_a", x, CLASSES)
    assert_close(cw.compute_cam(model, x, layer="conv_a", method="scorecam", class_index=CLASSES), peer)
