"""Each method finds the object a small CNN, trained here in seconds, really uses; with the same
architecture's random weights it does not (the model-randomization check of Adebayo et al. 2018)."""

from __future__ import annotations

import cv2
import keras
import numpy as np
import pytest
from keras import layers

import camwidget as cw

pytestmark = pytest.mark.slow  # trains a CNN, then maps 100 pictures per method twice

SIZE = 48


def generate(n: int, rng: np.random.Generator):
    """Noise, a large circle in every image (a distractor), and a cross in the images of class 1.
    Returns images, labels and each cross's top-left corner."""
    x = rng.uniform(0, 0.25, (n, SIZE, SIZE, 3)).astype("float32")
    y = rng.integers(0, 2, n)
    corners = np.zeros((n, 2), int)
    yy, xx = np.mgrid[:SIZE, :SIZE]
    for i in range(n):
        while True:
            (ty, tx), (dy, dx) = rng.integers(2, SIZE - 12, (2, 2))
            if abs(int(tx) - int(dx)) > 12 or abs(int(ty) - int(dy)) > 12:
                break
        x[i][(yy - dy - 5) ** 2 + (xx - dx - 5) ** 2 <= 30] = 0.9
        if y[i] == 1:
            x[i, ty + 4 : ty + 7, tx : tx + 10] = 0.9
            x[i, ty : ty + 10, tx + 4 : tx + 7] = 0.9
        corners[i] = ty, tx
    return x, y, corners


def network() -> keras.Model:
    inp = keras.Input((SIZE, SIZE, 3))
    x = layers.Conv2D(16, 3, padding="same", activation="relu")(inp)
    x = layers.MaxPooling2D()(x)
    x = layers.Conv2D(32, 3, padding="same", activation="relu")(x)
    x = layers.MaxPooling2D()(x)
    x = layers.Conv2D(32, 3, padding="same", activation="relu", name="last_conv")(x)
    x = layers.GlobalAveragePooling2D()(x)
    return keras.Model(inp, layers.Dense(2, activation="softmax")(x))


@pytest.fixture(scope="module")
def setting():
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x_train, y_train, _ = generate(2000, rng)
    x_test, y_test, corners = generate(200, rng)
    keep = y_test == 1
    trained = network()
    trained.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    trained.fit(x_train, y_train, epochs=6, batch_size=64, verbose=0)
    accuracy = trained.evaluate(x_test, y_test, verbose=0)[1]
    return trained, network(), x_test[keep], corners[keep], accuracy


def hit_rate(model, method, x, corners) -> float:
    """Share of images whose map peaks on the cross (its 10x10 box, 2 pixels of margin)."""
    cams = cw.compute_cam(model, x, method=method, class_index=1, layer="last_conv")
    hits = 0
    for cam, (ty, tx) in zip(cams, corners):
        up = cam if cam.shape[0] == SIZE else cv2.resize(cam, (SIZE, SIZE), interpolation=cv2.INTER_LINEAR)
        py, px = np.unravel_index(np.argmax(up), up.shape)
        hits += (ty - 2 <= py < ty + 12) and (tx - 2 <= px < tx + 12)
    return hits / len(cams)


def test_the_model_learned_the_task(setting):
    assert setting[4] >= 0.95


# Methods held to a different bar, each for a reason that is part of the method, not of camwidget:
# KPCA-CAM's sigmoid kernel tanh(x.y/K + 1) (the paper's and pytorch-grad-cam's default) saturates on
# unnormalised activations, so its first component follows the object less often than Eigen-CAM's
# (here about 63% against Eigen-CAM's 100%); Random-CAM is the control and must not find anything.
# SS-CAM's default noise (sigma = 2 on masks in [0, 1], the paper's and torch-cam's) drowns the masks, so its
# channel weights are noisier than Score-CAM's: about 90% here against Score-CAM's 97% (97% with noise=0.1).
# FullGrad sums every convolution's bias-gradients, each channel scaled to [0, 1], with the input-gradient: the
# first layers' edge detectors weigh as much as the last layer, so its peak follows bright edges (the cross or the
# distractor circle): about 54% here, and 45% with random weights. It fails this randomisation check, as
# Adebayo et al. 2018 found for gradient x input; docs/methods.md says so.
CLASS_AGNOSTIC_KERNEL = "kpca-cam"
CONTROL = "random-cam"
NOISY_MASKS = "sscam"
EDGES = "fullgrad"


@pytest.mark.parametrize(
    "method", [m for m in cw.METHODS if m not in (CLASS_AGNOSTIC_KERNEL, CONTROL, NOISY_MASKS, EDGES)]
)
def test_peak_on_the_object_only_when_trained(setting, method):
    trained, random, x, corners, _ = setting
    trained_rate, random_rate = hit_rate(trained, method, x, corners), hit_rate(random, method, x, corners)
    assert trained_rate >= 0.9, f"{method}: peak on the object in {trained_rate:.0%} of images"
    assert random_rate <= 0.7, f"{method}: random weights still hit {random_rate:.0%}: the map ignores the model"


def test_kpca_cam_finds_the_object_more_often_when_trained(setting):
    """KPCA-CAM follows what the trained model learned clearly more often than chance and than random
    weights, without Eigen-CAM's near-perfect rate (see CLASS_AGNOSTIC_KERNEL)."""
    trained, random, x, corners, _ = setting
    trained_rate = hit_rate(trained, CLASS_AGNOSTIC_KERNEL, x, corners)
    random_rate = hit_rate(random, CLASS_AGNOSTIC_KERNEL, x, corners)
    assert trained_rate >= 0.5, f"kpca-cam: peak on the object in {trained_rate:.0%} of images"
    assert trained_rate >= random_rate + 0.2, f"kpca-cam: trained {trained_rate:.0%}, random {random_rate:.0%}"


def test_sscam_with_its_default_noise_finds_the_object_nearly_as_often_as_scorecam(setting):
    """SS-CAM with the paper's noise: at least 85% (see NOISY_MASKS), and random weights still fail."""
    trained, random, x, corners, _ = setting
    trained_rate, random_rate = hit_rate(trained, NOISY_MASKS, x, corners), hit_rate(random, NOISY_MASKS, x, corners)
    assert trained_rate >= 0.85, f"sscam: peak on the object in {trained_rate:.0%} of images"
    assert random_rate <= 0.7, f"sscam: random weights still hit {random_rate:.0%}: the map ignores the model"


def test_fullgrad_finds_the_object_about_half_the_time(setting):
    """FullGrad's bar (see EDGES): its peak on the cross in at least 40% of images (a random pixel: under 10%)."""
    trained, _, x, corners, _ = setting
    rate = hit_rate(trained, EDGES, x, corners)
    assert rate >= 0.4, f"fullgrad: peak on the object in {rate:.0%} of images"


def test_random_cam_ignores_the_class(setting):
    """The control: random channel weights on the activations, so the same map for either class, and no
    better than chance at finding the object a trained model uses."""
    trained, _, x, corners, _ = setting
    for_cross = cw.compute_cam(trained, x, method=CONTROL, class_index=1, layer="last_conv")
    for_no_cross = cw.compute_cam(trained, x, method=CONTROL, class_index=0, layer="last_conv")
    np.testing.assert_array_equal(for_cross, for_no_cross)
    assert hit_rate(trained, CONTROL, x, corners) < 0.5
