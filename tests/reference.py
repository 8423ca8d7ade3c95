"""An independent Grad-CAM, written from the formula, for the tests to compare against.

The model is split by hand in each test: `features(x) -> A` and `logits(A) -> (N, C)` the pre-softmax class
scores, computed from the last Dense layer's kernel and bias (so nothing here relies on camwidget's
softmax detection or its layer capture).
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf


def dense_logits(dense, h):
    """h @ W + b of a Dense layer, i.e. its output before its activation, flattened to (N, C)."""
    z = tf.tensordot(h, dense.kernel, axes=1) + dense.bias
    return tf.reshape(z, (tf.shape(h)[0], -1))


def reference_gradcam(features, logits, x, classes):
    """w_k = mean_ij dy_c/dA_ij^k ; map = ReLU(sum_k w_k A^k), each map divided by its max (0 stays 0)."""
    A = tf.convert_to_tensor(features(tf.convert_to_tensor(x)))
    with tf.GradientTape() as tape:
        tape.watch(A)
        z = logits(A)
        y = tf.reduce_sum(tf.stack([z[n, c] for n, c in enumerate(classes)]))
    g = tape.gradient(y, A).numpy().astype(np.float64)
    A = A.numpy().astype(np.float64)
    maps = []
    for n in range(len(classes)):
        w = g[n].mean(axis=(0, 1))
        cam = np.maximum((A[n] * w).sum(axis=-1), 0.0)
        maps.append(cam / cam.max() if cam.max() > 0 else cam)
    return np.stack(maps)


def chain(*fns):
    def run(x):
        for f in fns:
            x = f(x)
        return x

    return run
