"""The activation family: maps from the activations alone (no gradients, no class), and the first principal
component that Eigen-CAM and eigen-smoothing share."""

from __future__ import annotations

import numpy as np

from camwidget.methods.registry import MethodInputs, register

# the methods this family registers, in the order the Method dropdown lists them
NAMES = ("eigencam",)


@register("eigencam", "Eigen-CAM", per_channel=False)
def eigencam(inputs: MethodInputs) -> np.ndarray:
    """Eigen-CAM (Muhammad & Yeasin 2020): the activations' first principal component, no gradients and no
    class: map = (A - mean(A)) v_1, v_1 the first right singular vector of A as a (h*w, K) matrix.
    The matrix is centred before the SVD (as pytorch-grad-cam does; the paper does not) and
    the component's sign is chosen so the map agrees with the summed activations, since an SVD's sign
    is arbitrary."""
    return project_first_component(inputs.capture.activations)


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
