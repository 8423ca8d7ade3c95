"""camwidget.dff, Deep Feature Factorization (cw.concepts): the factorisation, the first-order contributions
checked against NumPy on a GAP + dense head (where they are exact), and bad n."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from keras import layers

import camwidget as cw
from camwidget.dff import concepts


def gap_model(size: int = 16, channels: int = 6, n_classes: int = 3) -> keras.Model:
    inp = keras.Input((size, size, 3))
    x = layers.Conv2D(channels, 3, padding="same", activation="relu", name="features")(inp)
    x = layers.GlobalAveragePooling2D()(x)
    return keras.Model(inp, layers.Dense(n_classes, activation="softmax", name="classes")(x))


@pytest.fixture(scope="module")
def setting():
    keras.utils.set_random_seed(4)
    model = gap_model()
    images = np.random.default_rng(4).uniform(0, 1, (5, 16, 16, 3)).astype("float32")
    return model, images


def test_concepts_is_public():
    assert cw.concepts is concepts


def test_factorisation_and_contributions_match_numpy(setting):
    model, images = setting
    found = concepts(model, images, n=3, layer="features")
    # the activations written out: the conv layer as a sub-model
    A = keras.Model(model.inputs, model.get_layer("features").output)(images).numpy()
    N, h, w, K = A.shape
    W = found.maps.transpose(0, 2, 3, 1).reshape(N * h * w, 3)
    H = found.components
    assert found.maps.shape == (N, 3, h, w) and H.shape == (3, K)
    assert (W >= 0).all() and (H >= 0).all()
    assert found.error == pytest.approx(np.linalg.norm(A.reshape(-1, K) - W @ H) / np.linalg.norm(A), rel=1e-4)
    assert found.error < 0.5
    # GAP + dense: dy_c/dA(p) = V[:, c] / (h w), so r_ijc = sum_p W_ij(p) <H_j, V_c> / (h w)
    V, b = model.get_layer("classes").get_weights()
    expected = np.einsum("nj,jk,kc->njc", found.maps.sum(axis=(2, 3)), H, V) / (h * w)
    np.testing.assert_allclose(found.contributions, expected, rtol=1e-4, atol=1e-5)
    # and the contributions add up to the logit less its bias, up to the factorisation's error
    logits = A.mean(axis=(1, 2)) @ V
    approx = found.contributions.sum(axis=1)
    assert np.abs(approx - logits).max() <= 0.5 * np.abs(logits).max() + 1e-6
    assert found.classes == [0, 1, 2]
    for j, top in enumerate(found.top_classes):
        means = found.contributions[:, j].mean(axis=0)
        assert [c for c, _, _ in top] == [int(c) for c in np.argsort(-means)[:3] if means[c] > 0]


def test_repeatable_and_shares(setting):
    model, images = setting
    one = concepts(model, images, n=2, layer="features", seed=1)
    two = concepts(model, images, n=2, layer="features", seed=1)
    np.testing.assert_array_equal(one.maps, two.maps)
    share = one.class_share(range(len(images)), 0)
    assert share.shape == (2,) and (share >= 0).all()
    assert share.sum() == pytest.approx(1.0) or share.sum() == 0
    assert one.normalised_maps().max() == pytest.approx(1.0)


@pytest.mark.parametrize("n", [0, 7, -1, 2.5, True, "3"])
def test_bad_n_names_it_and_the_range(setting, n):
    model, images = setting
    with pytest.raises(ValueError, match=r"n \(the number of concepts\)") as caught:
        concepts(model, images, n=n, layer="features")
    if isinstance(n, int) and not isinstance(n, bool):
        assert "from 1 to 6" in str(caught.value)


def test_bad_classes(setting):
    model, images = setting
    with pytest.raises(ValueError, match="from 0 to 2"):
        concepts(model, images, n=2, layer="features", classes=[5])


def test_a_factorisation_stopped_before_converging_is_said_in_notes_not_on_stderr(setting):
    """scikit-learn warns on stderr when NMF reaches max_iter; concepts says so in its notes, in words, and
    stays silent when the factorisation converged."""
    import warnings

    model, images = setting
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # any warning that escaped would fail here
        stopped = concepts(model, images, n=3, layer="features", max_iter=2, tol=1e-12)
        converged = concepts(model, images, n=3, layer="features", max_iter=2000, tol=1e-2)
    said = [note for note in stopped.notes if "stopped at max_iter=2 iterations" in note]
    assert said and f"relative error {stopped.error:.3g}" in said[0], stopped.notes
    assert not any("max_iter" in note for note in converged.notes), converged.notes
