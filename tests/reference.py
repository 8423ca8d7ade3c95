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


# -- the methods' formula tests (test_methods*.py): the flat-head model (conftest's `model`) split by hand -------

TOL = 1e-3
as_numpy = ops.convert_to_numpy
CLASSES = [0, 2, 1]  # the class each of conftest's three `x` pictures is explained for


def split(model, layer):
    """features (input -> A) and logits (A -> pre-softmax scores), by hand, for models.flat_head_cnn."""
    L = model.get_layer
    order = ["conv_a", "pool_a", "conv_b", "conv_c", "flat"]
    i = order.index(layer)
    features = keras.Model(model.input, L(layer).output)
    logits = chain(*[L(n) for n in order[i + 1 :]], lambda h: dense_logits(L("dense"), h))
    return features, logits


def activations_and_gradients(model, layer, x, classes):
    """A and dy_c/dA by the hand split, differentiated by the backend's own autodiff."""
    features, logits = split(model, layer)
    A = features(ops.convert_to_tensor(x))

    def y(a):
        z = logits(a)
        return ops.sum(ops.stack([z[n, c] for n, c in enumerate(classes)]))

    return ops.convert_to_numpy(A).astype(np.float64), gradient(y, A).astype(np.float64)


def relu_max(maps):
    """ReLU, then each map divided by its max (an all-zero map stays zero)."""
    maps = np.maximum(maps, 0)
    out = np.zeros_like(maps)
    for n, m in enumerate(maps):
        if m.max() > 0:
            out[n] = m / m.max()
    return out


def assert_close(cam, ref):
    """cam equals ref within TOL, and ref is not all zero (the comparison would prove nothing)."""
    assert ref.max() > 0
    np.testing.assert_allclose(cam, ref, atol=TOL)


def ref_first_component(T):
    """Each (h, w, k) term's first principal component over the positions, signed to agree with the sum."""
    maps = []
    for t in T:
        h, w, k = t.shape
        m = t.reshape(h * w, k) - t.reshape(h * w, k).mean(axis=0)
        u, s, vt = np.linalg.svd(m)
        p = u[:, 0] * s[0]  # = m @ vt[0]
        if np.dot(p, t.reshape(h * w, k).sum(1)) < 0:
            p = -p
        maps.append(p.reshape(h, w))
    return np.array(maps)


def ref_gradcam_pp(A, G):
    """Grad-CAM++ (Chattopadhay et al. 2018) per image and channel: alpha = g^2 / (2 g^2 + sum(A) g^3)."""
    maps = []
    for a, g in zip(A, G):
        h, w, k = a.shape
        m = np.zeros((h, w))
        for c in range(k):
            gc, ac = g[..., c], a[..., c]
            denom = 2 * gc**2 + ac.sum() * gc**3
            alpha = np.where(gc != 0, gc**2 / np.where(denom != 0, denom, 1e-7), 0)
            m += (alpha * np.maximum(gc, 0)).sum() * ac
        maps.append(m)
    return relu_max(np.array(maps))


def tf_keras_vis_map(model, cls, layer, x, classes, **kw):
    """tf-keras-vis's map (its class `cls`, the softmax replaced by a linear output), ReLU'd and scaled."""
    from tf_keras_vis.utils.model_modifiers import ReplaceToLinear
    from tf_keras_vis.utils.scores import CategoricalScore

    tool = cls(model, model_modifier=ReplaceToLinear(), clone=True)
    raw = tool(CategoricalScore(list(classes)), x, penultimate_layer=layer, expand_cam=False, normalize_cam=False, **kw)
    return relu_max(np.asarray(raw, np.float64))


# -- the autodiff modules (test_engines_jax_autodiff.py, test_engines_torch_autodiff.py) --------------------------


def check_autodiff_module(module):
    """A JAX or torch autodiff module's passes on Dense(2) of weights W, b (y = x W + b), each against y and its
    derivatives written in NumPy, before and after the weights change (nothing baked in): the gradient pass's
    d sum(y_c^2) / d eps = 2 y_c at class c, the tail pass's d sum(y_c^2) / d a = 2 y_c W[:, c], the forward pass
    and the dry call's y, and the fingerprint's two sums over evenly picked weights."""
    dense = keras.layers.Dense(2, name="d")
    model = keras.Sequential([keras.Input((3,)), dense])
    x = np.random.default_rng(0).normal(size=(4, 3)).astype("float32")
    classes = np.array([0, 1, 1, 0], np.int32)
    onehot = np.eye(2)[classes]

    def squared_class_score(y, c):
        return ops.sum(y * ops.one_hot(c, 2), axis=1) ** 2

    def forward(call, eps, x, c, others):
        y = call(x)
        return squared_class_score(module.inject(y, eps[0]), c), y

    gradient_pass = module.gradient_pass(lambda: model, forward, lambda n: [(n, 2)])
    tail_pass = module.tail_pass(lambda: model, lambda a, c: (squared_class_score(dense(a), c), dense(a)))
    forward_pass = module.forward_pass(lambda: model, lambda call, x, others: call(x))
    fingerprint = module.fingerprint(model.weights, 3)
    for scale in (1.0, -2.5):
        W = np.array([[1.0, -2.0], [0.5, 3.0], [-1.5, 0.25]]) * scale
        b = np.array([0.3, -0.7]) * scale
        dense.set_weights([W.astype("float32"), b.astype("float32")])
        y = x.astype(np.float64) @ W + b
        chosen = (y * onehot).sum(axis=1, keepdims=True)
        (grad,), aux = gradient_pass(x, classes, [])
        np.testing.assert_allclose(grad, 2 * chosen * onehot, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(aux, y, rtol=1e-5, atol=1e-5)
        grad, aux = tail_pass(x, classes)
        np.testing.assert_allclose(grad, 2 * chosen * W[:, classes].T, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(aux, y, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(forward_pass(x, []), y, rtol=1e-5, atol=1e-5)
        dry = module.dry_call(model, lambda call: call(ops.convert_to_tensor(x)))
        np.testing.assert_allclose(ops.convert_to_numpy(dry), y, rtol=1e-5, atol=1e-5)
        flat = np.concatenate([W.ravel()[np.linspace(0, 5, 3).astype(int)], b.ravel()[[0, 1]]])
        weights = np.sin(np.arange(1, len(flat) + 1) * 0.7071)
        np.testing.assert_allclose(fingerprint(), [(flat * weights).sum(), flat.sum()], rtol=1e-5)
