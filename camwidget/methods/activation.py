"""The activation family: maps from the activations alone (no gradients, no class), and the first principal
component that Eigen-CAM and eigen-smoothing share."""

from __future__ import annotations

import numpy as np

from camwidget.methods.registry import MethodInputs, register

# the methods this family registers, in the order the Method dropdown lists them
NAMES = ("eigencam", "fem", "kpca-cam")
FAMILY = "activation"
FEM_SIGMAS = 2.0  # FEM's k-sigma rule


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


@register("kpca-cam", "KPCA-CAM", per_channel=False)
def kpca_cam(inputs: MethodInputs) -> np.ndarray:
    """KPCA-CAM (Karmani et al. 2024): Eigen-CAM with kernel PCA. The activations as a (h*w, K) matrix X,
    centred; the sigmoid kernel K_ij = tanh(gamma x_i . x_j + 1) with gamma = 1/K (scikit-learn's defaults,
    as pytorch-grad-cam's KPCA_CAM calls it); K centred in feature space; the map is the first kernel
    principal component, sqrt(lambda_1) u_1, signed to agree with the summed activations."""
    a = inputs.capture.activations
    n, h, w, k = a.shape
    maps = np.zeros((n, h, w), np.float32)
    for i in range(n):
        x = a[i].reshape(h * w, k).astype(np.float64)
        x = x - x.mean(axis=0)
        if not np.any(x) or h * w < 2:
            continue
        kernel = np.tanh(x @ x.T / k + 1.0)
        ones = np.full_like(kernel, 1.0 / len(kernel))
        centred = kernel - ones @ kernel - kernel @ ones + ones @ kernel @ ones
        values, vectors = np.linalg.eigh(centred)
        component = vectors[:, -1] * np.sqrt(max(values[-1], 0.0))
        if np.dot(component, a[i].reshape(h * w, k).sum(axis=1)) < 0:
            component = -component
        maps[i] = component.reshape(h, w)
    return maps


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
