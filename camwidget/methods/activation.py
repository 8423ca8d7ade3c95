"""The activation family: maps from the activations alone (no gradients, no class), and the first principal
component that Eigen-CAM and eigen-smoothing share."""

from __future__ import annotations

import numpy as np

from camwidget.methods.registry import MethodInputs, Option, number_in, one_of, option, register

# the methods this family registers, in the order the Method dropdown lists them
NAMES = ("eigencam", "fem", "kpca-cam")
FAMILY = "activation"
FEM_SIGMAS = 2.0  # FEM's k-sigma rule
_GAMMA = number_in("gamma", 0.0, float("inf"), low_open=True)


def _check_gamma(value: object) -> float | None:
    """KPCA-CAM's gamma: None (1/K, scikit-learn's default) or a number > 0."""
    return None if value is None else _GAMMA.check(value)


@register("eigencam", "Eigen-CAM", per_channel=False)
def eigencam(inputs: MethodInputs) -> np.ndarray:
    """Eigen-CAM (Muhammad & Yeasin 2020): the activations' first principal component, no gradients and no
    class: map = (A - mean(A)) v_1, v_1 the first right singular vector of A as a (h*w, K) matrix.
    The matrix is centred before the SVD (as pytorch-grad-cam does; the paper does not) and
    the component's sign is chosen so the map agrees with the summed activations, since an SVD's sign
    is arbitrary."""
    return project_first_component(inputs.capture.activations)


@register("fem", "FEM")
def fem(inputs: MethodInputs) -> np.ndarray:
    """FEM, the feature explanation method (Fuad et al. 2020), as pytorch-grad-cam has it: with mu_k and
    sigma_k the mean and standard deviation of channel k over the positions, w_k = the share of positions
    where A_k > mu_k + 2 sigma_k (the k-sigma rule, k = 2); T_k = w_k A_k. No gradients and no class."""
    a = inputs.capture.activations.astype(np.float64)
    threshold = a.mean(axis=(1, 2), keepdims=True) + FEM_SIGMAS * a.std(axis=(1, 2), keepdims=True)
    weights = (a > threshold).mean(axis=(1, 2), keepdims=True)
    return (weights * a).astype(np.float32)


KERNELS = ("sigmoid", "rbf", "poly", "linear", "cosine")


@register(
    "kpca-cam",
    "KPCA-CAM",
    per_channel=False,
    options={
        "kernel": option("sigmoid", one_of("kernel", KERNELS)),
        "gamma": Option(None, _check_gamma, "None (1/K) or a number > 0"),
    },
)
def kpca_cam(inputs: MethodInputs, kernel: str, gamma: float | None) -> np.ndarray:
    """KPCA-CAM (Karmani et al. 2024): Eigen-CAM with kernel PCA. The activations as a (h*w, K) matrix X,
    centred; a kernel matrix K_ij = k(x_i, x_j) with scikit-learn's KernelPCA definitions (as pytorch-grad-cam's
    KPCA_CAM calls it): sigmoid tanh(gamma x_i.x_j + 1) (the default), rbf exp(-gamma |x_i - x_j|^2),
    poly (gamma x_i.x_j + 1)^3, linear x_i.x_j, cosine x_i.x_j / (|x_i| |x_j|); gamma = 1/K unless given;
    K centred in feature space; the map is the first kernel principal component, sqrt(lambda_1) u_1, signed to
    agree with the summed activations. The sigmoid kernel saturates on large activations, which is why the rbf
    kernel with a small gamma can follow the object better. (A layer of one position, where no component
    exists, is refused for every method by the layout.)"""
    a = inputs.capture.activations
    n, h, w, k = a.shape
    g = 1.0 / k if gamma is None else gamma
    maps = np.zeros((n, h, w), np.float32)
    for i in range(n):
        x = a[i].reshape(h * w, k).astype(np.float64)
        x = x - x.mean(axis=0)
        if not np.any(x) or h * w < 2:
            continue
        matrix = _kernel(x, kernel, g)
        ones = np.full_like(matrix, 1.0 / len(matrix))
        centred = matrix - ones @ matrix - matrix @ ones + ones @ matrix @ ones
        values, vectors = np.linalg.eigh(centred)
        component = vectors[:, -1] * np.sqrt(max(values[-1], 0.0))
        if np.dot(component, a[i].reshape(h * w, k).sum(axis=1)) < 0:
            component = -component
        maps[i] = component.reshape(h, w)
    return maps


def _kernel(x: np.ndarray, kernel: str, gamma: float) -> np.ndarray:
    """scikit-learn's pairwise kernels (coef0 = 1, degree = 3) of the rows of x."""
    dot = x @ x.T
    if kernel == "sigmoid":
        return np.tanh(gamma * dot + 1.0)
    if kernel == "poly":
        return (gamma * dot + 1.0) ** 3
    if kernel == "rbf":
        squared = np.diag(dot)
        return np.exp(-gamma * np.maximum(squared[:, None] + squared[None, :] - 2 * dot, 0.0))
    if kernel == "cosine":
        norms = np.linalg.norm(x, axis=1)
        norms[norms == 0] = 1.0
        return dot / np.outer(norms, norms)
    return dot


def project_first_component(terms: np.ndarray) -> np.ndarray:
    """Per image: the (h*w, K) matrix, centred, projected on its first right singular vector -> (h, w),
    signed to agree with the sum over K. Used by Eigen-CAM and by eigen-smoothing."""
    n, h, w, k = terms.shape
    maps = np.zeros((n, h, w), np.float32)
    for i in range(n):
        matrix = terms[i].reshape(h * w, k).astype(np.float64)
        matrix = matrix - matrix.mean(axis=0)
        if not np.any(matrix):
            continue
        _, _, vt = np.linalg.svd(matrix, full_matrices=False)
        projection = matrix @ vt[0]
        if np.dot(projection, terms[i].reshape(h * w, k).sum(axis=1)) < 0:
            projection = -projection
        maps[i] = projection.reshape(h, w)
    return maps
