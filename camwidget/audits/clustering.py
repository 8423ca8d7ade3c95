"""Spectral clustering of maps with the number of clusters from the eigengap, as SpRAy (Lapuschkin et al.,
"Unmasking Clever Hans predictors and assessing what machines really learn", Nature Communications 2019).

Affinity (self-tuning, Zelnik-Manor and Perona 2004): for maps x_i (downsampled, mass 1, flattened),
d_ij = ||x_i - x_j||, sigma_i the distance to x_i's k-th nearest neighbour (k = 7, fewer for small sets),
A_ij = exp(-d_ij^2 / (sigma_i sigma_j)), A_ii = 0.

Clustering (Ng, Jordan and Weiss 2001, as scikit-learn's SpectralClustering computes it): the normalised
Laplacian L = I - D^-1/2 A D^-1/2 (D the degrees), its eigenvalues l_0 <= l_1 <= ... and eigenvectors u;
the number of clusters k = argmax_{1 <= k <= K} (l_k - l_{k-1}) (the eigengap: k nearly separate groups give
k eigenvalues near 0); the embedding D^-1/2 u_0..u_{k-1} (signs fixed), clustered by k-means (10 starts,
seeded). On the same affinity and k, the labels are scikit-learn's (up to their numbering).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

NEIGHBOURS = 7
DENSE_UP_TO = 300  # maps; above this the few smallest eigenpairs come from Lanczos (scipy's eigsh)


@dataclass
class Clustering:
    labels: np.ndarray  # (n,) int, 0..k-1, clusters numbered by size (0 the largest)
    eigenvalues: np.ndarray  # the smallest eigenvalues of L, l_0..l_K
    k: int


def one_thread() -> Any:
    """A context in which BLAS (OpenBLAS, MKL) and OpenMP run on one thread: the audit's numerical stages
    (affinities, eigenvectors, k-means, NMF, t-SNE) work on matrices of a few hundred to a few thousand rows,
    where more threads gain little and, beside the model's own thread pool (whose idle threads spin) on a
    busy machine, cost several times their work in waiting (measured with benchmarks/bench_audit.py).

    Returns:
        threadpoolctl's context manager (``with one_thread(): ...``).
    """
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1)


def affinity(points: np.ndarray, neighbours: int = NEIGHBOURS) -> np.ndarray:
    """The self-tuning Gaussian affinity (n, n) of `points` (n, d); see the module's docstring."""
    x = np.asarray(points, np.float64).reshape(len(points), -1)
    squared = np.maximum((x**2).sum(1)[:, None] + (x**2).sum(1)[None, :] - 2 * x @ x.T, 0.0)
    distance = np.sqrt(squared)
    k = min(neighbours, len(x) - 1)
    sigma = np.sort(distance, axis=1)[:, k] if k > 0 else np.ones(len(x))
    sigma = np.maximum(sigma, max(float(sigma.max()) * 1e-6, 1e-12))  # duplicates: no division by zero
    a = np.exp(-squared / np.outer(sigma, sigma))
    np.fill_diagonal(a, 0.0)
    return a


def spectral_clusters(a: np.ndarray, max_clusters: int = 8, seed: int = 0, k: int | None = None) -> Clustering:
    """Spectral clusters of an affinity `a` (n, n), the number from the eigengap unless `k` is given.

    Args:
        a: a symmetric non-negative affinity, zero diagonal.
        max_clusters: K, the most clusters the eigengap may choose.
        seed: k-means's seed (10 starts): the same seed gives the same labels.
        k: a fixed number of clusters (the eigengap is then only reported).

    Returns:
        A :class:`Clustering`.

    Raises:
        ValueError: fewer than 3 points, or a max_clusters below 1.
    """
    from scipy.linalg import eigh
    from scipy.sparse.linalg import eigsh
    from sklearn.cluster import KMeans

    n = len(a)
    if n < 3:
        raise ValueError(f"spectral clustering needs at least 3 maps, not {n}")
    if isinstance(max_clusters, bool) or not isinstance(max_clusters, int) or max_clusters < 1:
        raise ValueError(f"max_clusters must be a whole number of at least 1, not {max_clusters!r}")
    degree = a.sum(axis=1)
    root = np.sqrt(np.maximum(degree, 1e-12))
    laplacian = np.eye(n) - a / np.outer(root, root)
    top = min(max_clusters, n - 1)
    if n <= DENSE_UP_TO:
        values, vectors = eigh(laplacian, subset_by_index=[0, top])
    else:  # Lanczos: the largest eigenvalues of D^-1/2 A D^-1/2 are 1 - the smallest of L (O(n^2) a step, not n^3)
        values, vectors = eigsh(np.eye(n) - laplacian, k=top + 1, which="LA", v0=np.ones(n) / np.sqrt(n))
        values, vectors = 1.0 - values[::-1], vectors[:, ::-1]
    if k is None:
        k = int(np.argmax(np.diff(values))) + 1
    k = max(1, min(int(k), n))
    if k == 1:
        return Clustering(np.zeros(n, int), values, 1)
    embedding = vectors[:, :k] / root[:, None]
    # scikit-learn's deterministic sign flip: each vector's largest entry positive
    signs = np.sign(embedding[np.argmax(np.abs(embedding), axis=0), range(k)])
    embedding = embedding * np.where(signs == 0, 1.0, signs)
    labels = KMeans(k, n_init=10, random_state=seed).fit_predict(embedding)
    order = np.argsort(-np.bincount(labels, minlength=k), kind="stable")
    renumber = np.empty(k, int)
    renumber[order] = np.arange(k)
    return Clustering(renumber[labels], values, k)
