"""An independent Grad-CAM, written from the formula, for the tests to compare against.

The model is split by hand in each test: `features(x) -> A` and `logits(A) -> (N, C)` the pre-softmax class
scores, computed from the last Dense layer's kernel and bias (so nothing here relies on camwidget's
softmax detection or its layer capture). The gradient is taken by the running Keras backend's own autodiff
(GradientTape, jax.grad, torch.autograd), so the same test checks camwidget on every backend.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops


def dense_logits(dense, h):
    """h @ W + b of a Dense layer, i.e. its output before its activation, flattened to (N, C)."""
    z = ops.tensordot(h, dense.kernel, axes=1) + dense.bias
    return ops.reshape(z, (h.shape[0], -1))


def gradient(f, a):
    """d f(a) / d a for a scalar function f, by the backend's own autodiff (not camwidget's capture)."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        a = tf.convert_to_tensor(a)
        with tf.GradientTape() as tape:
            tape.watch(a)
            y = f(a)
        return tape.gradient(y, a).numpy()
    if backend == "jax":
        import jax

        return np.asarray(jax.grad(f)(a))
    if backend == "torch":
        import torch

        a = a.detach().clone().requires_grad_(True)
        return torch.autograd.grad(f(a), a)[0].detach().cpu().numpy()
    raise NotImplementedError(backend)


def reference_gradcam(features, logits, x, classes, normalize=True):
    """w_k = mean_ij dy_c/dA_ij^k ; map = ReLU(sum_k w_k A^k), each map divided by its max (0 stays 0);
    normalize=False: the signed sum_k w_k A^k."""
    A = features(ops.convert_to_tensor(x))

    def y(a):
        z = logits(a)
        return ops.sum(ops.stack([z[n, c] for n, c in enumerate(classes)]))

    g = gradient(y, A).astype(np.float64)
    A = ops.convert_to_numpy(A).astype(np.float64)
    maps = []
    for n in range(len(classes)):
        w = g[n].mean(axis=(0, 1))
        cam = (A[n] * w).sum(axis=-1)
        if not normalize:
            maps.append(cam)
            continue
        cam = np.maximum(cam, 0.0)
        maps.append(cam / cam.max() if cam.max() > 0 else cam)
    return np.stack(maps)


def chain(*fns):
    def run(x):
        for f in fns:
            x = f(x)
        return x

    return run
