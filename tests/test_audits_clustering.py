"""camwidget.audits.clustering: the labels are scikit-learn's SpectralClustering on the same affinity (up to
their numbering) and the same under a seed; the eigengap counts well-separated groups; many maps take Lanczos
and get the dense solver's eigenvalues; the affinity is the self-tuning formula written out here."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from camwidget.audits.clustering import affinity, spectral_clusters


def blobs(sizes, seed):
    """Maps in groups: each group a bright blob at its own place, with noise."""
    rng = np.random.default_rng(seed)
    maps = []
    for n in sizes:
        centre = rng.uniform(3, 13, 2)
        yy, xx = np.mgrid[:16, :16]
        blob = np.exp(-((yy - centre[0]) ** 2 + (xx - centre[1]) ** 2) / 6)
        maps += [blob + rng.uniform(0, 0.1, (16, 16)) for _ in range(n)]
    return np.asarray(maps, np.float32)


@settings(max_examples=8, deadline=None)
@given(sizes=st.lists(st.integers(4, 15), min_size=2, max_size=4), seed=st.integers(0, 2**16))
def test_clustering_is_scikit_learns_on_the_same_affinity(sizes, seed):
    from sklearn.cluster import SpectralClustering
    from sklearn.metrics import adjusted_rand_score

    maps = blobs(sizes, seed)
    maps /= maps.sum(axis=(1, 2), keepdims=True)
    a = affinity(maps)
    ours = spectral_clusters(a, max_clusters=6, seed=0, k=len(sizes))
    theirs = SpectralClustering(len(sizes), affinity="precomputed", random_state=0).fit(a).labels_
    assert adjusted_rand_score(ours.labels, theirs) == pytest.approx(1.0)
    again = spectral_clusters(a, max_clusters=6, seed=0, k=len(sizes))
    np.testing.assert_array_equal(ours.labels, again.labels)


def test_eigengap_finds_well_separated_groups():
    maps = blobs([10, 12, 9], 3)
    a = affinity(maps / maps.sum(axis=(1, 2), keepdims=True))
    found = spectral_clusters(a, max_clusters=6, seed=0)
    assert found.k == 3
    assert sorted(np.bincount(found.labels).tolist()) == [9, 10, 12]
    # the eigengap rule written out: the count of eigenvalues before the largest gap
    assert found.k == int(np.argmax(np.diff(found.eigenvalues))) + 1


def test_many_maps_take_lanczos_and_get_the_same_eigenvalues():
    from scipy.linalg import eigh

    from camwidget.audits import clustering

    maps = blobs([150, 130, 120], 5)
    a = affinity(maps / maps.sum(axis=(1, 2), keepdims=True))
    assert len(a) > clustering.DENSE_UP_TO
    found = spectral_clusters(a, max_clusters=6, seed=0)
    root = np.sqrt(a.sum(axis=1))
    dense = eigh(np.eye(len(a)) - a / np.outer(root, root), eigvals_only=True)[:7]
    np.testing.assert_allclose(found.eigenvalues, dense, atol=1e-6)
    assert found.k == 3


@settings(max_examples=20, deadline=None)
@given(n=st.integers(3, 12), d=st.integers(1, 6), seed=st.integers(0, 2**16))
def test_affinity_is_the_self_tuning_formula(n, d, seed):
    """A_ij = exp(-d_ij^2 / (sigma_i sigma_j)), sigma_i the distance to the k-th nearest neighbour (k = min(7,
    n - 1)), A_ii = 0: written out with loops."""
    points = np.random.default_rng(seed).random((n, d))
    k = min(7, n - 1)
    distance = [[float(np.sqrt(((points[i] - points[j]) ** 2).sum())) for j in range(n)] for i in range(n)]
    sigma = [sorted(row)[k] for row in distance]  # the row's own 0 comes first
    expected = np.array(
        [
            [0.0 if i == j else np.exp(-(distance[i][j] ** 2) / (sigma[i] * sigma[j])) for j in range(n)]
            for i in range(n)
        ]
    )
    np.testing.assert_allclose(affinity(points), expected, rtol=1e-9, atol=1e-12)


def test_too_few_maps_or_a_bad_count_are_named():
    with pytest.raises(ValueError, match="at least 3 maps, not 2"):
        spectral_clusters(np.ones((2, 2)) - np.eye(2))
    with pytest.raises(ValueError, match="max_clusters must be a whole number of at least 1, not 0"):
        spectral_clusters(np.ones((4, 4)) - np.eye(4), max_clusters=0)
