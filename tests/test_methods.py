"""Each CAM method equals an independent reference of its formula (1e-3), and tf-keras-vis where the
definitions agree."""

from __future__ import annotations

import keras
import models
import numpy as np
import pytest
from keras import ops
from reference import chain, dense_logits, gradient

import camwidget as cw

if keras.backend.backend() == "tensorflow":  # the guided and peer checks; JAX and torch run without TensorFlow
    import tensorflow as tf

as_numpy = ops.convert_to_numpy

TOL = 1e-3


@pytest.fixture(scope="module")
def model(flat_model):
    return flat_model


@pytest.fixture(scope="module")
def x(flat_x):
    return flat_x


CLASSES = [0, 2, 1]


def split(model, layer):
    """features (input -> A) and logits (A -> pre-softmax scores), by hand."""
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

    return as_numpy(A).astype(np.float64), gradient(y, A).astype(np.float64)


def relu_max(maps):
    maps = np.maximum(maps, 0)
    out = np.zeros_like(maps)
    for n, m in enumerate(maps):
        if m.max() > 0:
            out[n] = m / m.max()
    return out


def assert_close(cam, ref):
    assert ref.max() > 0
    np.testing.assert_allclose(cam, ref, atol=TOL)


# -- gradient methods: A and G from a plain GradientTape, formulas written out per image and channel --------


def ref_gradcam_pp(A, G):
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


def ref_hirescam(A, G):
    return relu_max((A * G).sum(-1))


def ref_xgradcam(A, G):
    maps = []
    for a, g in zip(A, G):
        w = [(g[..., c] * a[..., c]).sum() / (a[..., c].sum() + 1e-7) for c in range(a.shape[-1])]
        maps.append((a * np.array(w)).sum(-1))
    return relu_max(np.array(maps))


def ref_layercam(A, G):
    return relu_max((np.maximum(G, 0) * A).sum(-1))


@pytest.mark.parametrize(
    "method, reference",
    [("gradcam++", ref_gradcam_pp), ("hirescam", ref_hirescam), ("xgradcam", ref_xgradcam), ("layercam", ref_layercam)],
)
@pytest.mark.parametrize("layer", ["conv_b", "conv_c"])
def test_gradient_methods_match_their_formulas(model, x, method, reference, layer):
    A, G = activations_and_gradients(model, layer, x, CLASSES)
    assert_close(cw.compute_cam(model, x, layer=layer, method=method, class_index=CLASSES), reference(A, G))


def test_methods_differ_where_gradients_vary(model, x):
    """On a Flatten head the gradient methods are not one method in disguise."""
    maps = {
        m: cw.compute_cam(model, x, layer="conv_b", method=m, class_index=CLASSES)
        for m in ("gradcam", "gradcam++", "hirescam", "xgradcam", "layercam")
    }
    names = list(maps)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            assert np.abs(maps[a] - maps[b]).max() > 0.05, (a, b)


# -- Score-CAM ------------------------------------------------------------------------------------------------


def ref_scorecam(model, layer, x, classes, keep=None):
    features, _ = split(model, layer)
    A = as_numpy(features(x))
    maps = []
    for n in range(len(x)):
        a = A[n]
        channels = range(a.shape[-1]) if keep is None else keep[n]
        m = np.zeros(a.shape[:2])
        for c in channels:
            up = as_numpy(ops.image.resize(a[..., c : c + 1][None], x.shape[1:3], interpolation="bilinear"))[0, ..., 0]
            mask = (up - up.min()) / (up.max() - up.min() + 1e-7)
            probs = as_numpy(model(x[n : n + 1] * mask[None, ..., None]))[0]  # the model's own softmax
            m += probs[classes[n]] * a[..., c]
        maps.append(m)
    return relu_max(np.array(maps))


@pytest.mark.parametrize("layer", ["conv_a", "conv_c"])
def test_scorecam_matches_its_formula(model, x, layer):
    assert_close(
        cw.compute_cam(model, x, layer=layer, method="scorecam", class_index=CLASSES),
        ref_scorecam(model, layer, x, CLASSES),
    )


def test_scorecam_channel_bound_keeps_the_most_varied_channels(model, x):
    features, _ = split(model, "conv_b")
    A = as_numpy(features(x))
    keep = [np.argsort(-a.reshape(-1, a.shape[-1]).std(axis=0), kind="stable")[:5] for a in A]
    cam = cw.compute_cam(model, x, layer="conv_b", method="scorecam", class_index=CLASSES, max_channels=5)
    assert_close(cam, ref_scorecam(model, "conv_b", x, CLASSES, keep))


# -- Eigen-CAM, CAM, Guided Grad-CAM --------------------------------------------------------------------------


def ref_first_component(T):
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


def test_eigencam_is_the_first_principal_component(model, x):
    features, _ = split(model, "conv_b")
    A = as_numpy(features(x)).astype(np.float64)
    cam = cw.compute_cam(model, x, layer="conv_b", method="eigencam")
    assert_close(cam, relu_max(ref_first_component(A)))
    np.testing.assert_allclose(cam, cw.compute_cam(model, x, layer="conv_b", method="eigencam", class_index=[1, 1, 1]))


# -- the methods added from pytorch-grad-cam and torch-cam: each from its formula, written out here ------------


def ref_gradcam_elementwise(A, G):
    maps = []
    for a, g in zip(A, G):
        m = np.zeros(a.shape[:2])
        for c in range(a.shape[-1]):
            m += np.maximum(g[..., c] * a[..., c], 0)  # the ReLU per position and channel, before the sum
        maps.append(m)
    return relu_max(np.array(maps))


def ref_fem(A, sigmas=2.0):
    maps = []
    for a in A:
        m = np.zeros(a.shape[:2])
        for c in range(a.shape[-1]):
            channel = a[..., c]
            share = (channel > channel.mean() + sigmas * channel.std()).mean()
            m += share * channel
        maps.append(m)
    return relu_max(np.array(maps))


def ref_kpca(A):
    """First kernel principal component of the centred (h*w, K) activations, sigmoid kernel, gamma = 1/K, by
    scikit-learn (what pytorch-grad-cam's KPCA_CAM calls), signed to agree with the summed activations."""
    from sklearn.decomposition import KernelPCA

    maps = []
    for a in A:
        h, w, k = a.shape
        x = a.reshape(h * w, k) - a.reshape(h * w, k).mean(axis=0)
        p = KernelPCA(n_components=1, kernel="sigmoid").fit_transform(x)[:, 0]
        if np.dot(p, a.reshape(h * w, k).sum(axis=1)) < 0:
            p = -p
        maps.append(p.reshape(h, w))
    return relu_max(np.array(maps))


@pytest.mark.parametrize("layer", ["conv_b", "conv_c"])
def test_added_methods_match_their_formulas(model, x, layer):
    A, G = activations_and_gradients(model, layer, x, CLASSES)
    cam = lambda method: cw.compute_cam(model, x, layer=layer, method=method, class_index=CLASSES)  # noqa: E731
    assert_close(cam("gradcam-elementwise"), ref_gradcam_elementwise(A, G))
    assert_close(cam("eigen-gradcam"), relu_max(ref_first_component(A * G)))
    assert_close(cam("fem"), ref_fem(A))
    w = np.random.default_rng(0).uniform(-1, 1, (len(x), 1, 1, A.shape[-1]))
    assert_close(cam("random-cam"), relu_max((w * A).sum(-1)))
    if keras.backend.backend() == "tensorflow":  # scikit-learn comes with the peers, in the TensorFlow run
        assert_close(cam("kpca-cam"), ref_kpca(A))
    # the class matters to the gradient ones, not to the activation ones
    other = [(c + 1) % 3 for c in CLASSES]
    assert (
        np.abs(
            cam("eigen-gradcam") - cw.compute_cam(model, x, layer=layer, method="eigen-gradcam", class_index=other)
        ).max()
        > 0.01
    )
    np.testing.assert_allclose(cam("fem"), cw.compute_cam(model, x, layer=layer, method="fem", class_index=other))


def test_random_cam_is_the_same_every_time_and_unlike_the_class_maps(model, x):
    first = cw.compute_cam(model, x, layer="conv_b", method="random-cam")
    np.testing.assert_array_equal(first, cw.compute_cam(model, x, layer="conv_b", method="random-cam"))
    assert np.abs(first - cw.compute_cam(model, x, layer="conv_b", method="gradcam")).max() > 0.05


def test_cam_uses_the_dense_weights_after_global_average_pooling(x):
    m = models.small_cnn(n_classes=3)
    A = as_numpy(keras.Model(m.input, m.get_layer("conv_b").output)(x))
    W = as_numpy(m.get_layer("dense").kernel)
    ref = relu_max(np.stack([A[n] @ W[:, c] for n, c in enumerate(CLASSES)]))
    assert_close(cw.compute_cam(m, x, method="cam", class_index=CLASSES), ref)
    # and on such a model Grad-CAM is the same map (Selvaraju et al., section 3.1)
    np.testing.assert_allclose(cw.compute_cam(m, x, method="gradcam", class_index=CLASSES), ref, atol=TOL)


def test_cam_on_composite_head_and_a_clear_error_elsewhere(composite_b):
    xb = np.random.default_rng(0).uniform(0, 255, (1, 64, 64, 3)).astype("float32")
    head = composite_b.get_layer("head")
    A = as_numpy(head.get_layer("head_conv")(composite_b.get_layer("vgg16")(xb)))
    W = as_numpy(head.get_layer("head_dense").kernel)
    refs = [relu_max(A @ W[:, c]) for c in range(5)]
    assert any(r.max() > 0 for r in refs)
    for c, ref in enumerate(refs):
        np.testing.assert_allclose(cw.compute_cam(composite_b, xb, method="cam", class_index=c), ref, atol=TOL)
    with pytest.raises(
        ValueError,
        match=r"CAM \(Zhou et al. 2016\) needs layer 'vgg16/block5_conv3'.*GlobalAveragePooling2D.*block5_pool.*'gradcam'",
    ):
        cw.compute_cam(composite_b, xb, method="cam", layer="vgg16/block5_conv3")


def test_cam_error_on_flatten_head(model, x):
    with pytest.raises(ValueError, match="after it come: flat, dense"):
        cw.compute_cam(model, x, layer="conv_c", method="cam")


def guided_relu(v):
    @tf.custom_gradient
    def relu(v):
        y = tf.nn.relu(v)

        def grad(dy):
            return dy * tf.cast(dy > 0, dy.dtype) * tf.cast(y > 0, dy.dtype)

        return y, grad

    return relu(v)


def ref_guided_backprop(model, x, classes):
    """The flat-head model's forward pass rewritten with tf ops and a guided ReLU."""
    L = model.get_layer

    def conv(layer, v):
        return guided_relu(tf.nn.conv2d(v, L(layer).kernel, 1, "SAME") + L(layer).bias)

    xt = tf.convert_to_tensor(x)
    with tf.GradientTape() as tape:
        tape.watch(xt)
        v = conv("conv_a", xt)
        v = tf.nn.max_pool2d(v, 2, 2, "VALID")
        v = conv("conv_c", conv("conv_b", v))
        z = dense_logits(L("dense"), tf.reshape(v, (len(x), -1)))
        y = tf.reduce_sum(tf.stack([z[n, c] for n, c in enumerate(classes)]))
    return tape.gradient(y, xt).numpy()


@pytest.mark.tensorflow_only
def test_guided_gradcam_is_guided_backprop_times_upsampled_gradcam(model, x):
    A, G = activations_and_gradients(model, "conv_c", x, CLASSES)
    gradcam = relu_max((A * G.mean(axis=(1, 2), keepdims=True)).sum(-1))
    up = tf.image.resize(gradcam[..., None].astype(np.float32), (32, 32), method="bilinear")[..., 0].numpy()
    saliency = np.sqrt((ref_guided_backprop(model, x, CLASSES).astype(np.float64) ** 2).sum(-1))
    cam = cw.compute_cam(model, x, layer="conv_c", method="guided-gradcam", class_index=CLASSES)
    assert cam.shape == (3, 32, 32)  # input resolution
    assert_close(cam, relu_max(up * saliency))
    plain = keras.Model(model.input, model.output)  # not equal to the plain (unguided) gradient: the guide works
    xt = tf.convert_to_tensor(x)
    with tf.GradientTape() as tape:
        tape.watch(xt)
        z = plain(xt)
    assert np.abs(tape.gradient(z, xt).numpy()).sum() > 0


@pytest.mark.tensorflow_only
def test_guided_gradcam_leaves_relu_gradient_alone(model, x):
    cw.compute_cam(model, x, layer="conv_c", method="guided-gradcam")
    v = tf.constant([-1.0, 2.0])
    with tf.GradientTape() as tape:
        tape.watch(v)
        y = tf.reduce_sum(tf.nn.relu(v) * tf.constant([1.0, -3.0]))
    np.testing.assert_array_equal(tape.gradient(y, v).numpy(), [0.0, -3.0])  # not zeroed by a guided gradient


# -- smoothing -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["gradcam", "layercam"])
def test_eigen_smooth_projects_the_per_channel_terms(model, x, method):
    A, G = activations_and_gradients(model, "conv_b", x, CLASSES)
    terms = A * G.mean(axis=(1, 2), keepdims=True) if method == "gradcam" else np.maximum(G, 0) * A
    cam = cw.compute_cam(model, x, layer="conv_b", method=method, class_index=CLASSES, eigen_smooth=True)
    assert_close(cam, relu_max(ref_first_component(terms)))


def test_aug_smooth_averages_flipped_and_scaled_copies(model, x):
    total = 0
    for flip in (False, True):
        for factor in (0.9, 1.0, 1.1):
            xa = (x[:, :, ::-1] if flip else x) * factor
            A, G = activations_and_gradients(model, "conv_b", np.ascontiguousarray(xa, np.float32), CLASSES)
            m = relu_max((A * G.mean(axis=(1, 2), keepdims=True)).sum(-1))
            total = total + (m[:, :, ::-1] if flip else m)
    cam = cw.compute_cam(model, x, layer="conv_b", class_index=CLASSES, aug_smooth=True)
    assert_close(cam, relu_max(total / 6))


# -- the peers ------------------------------------------------------------------------------------------------


def _tf_keras_vis(model, cls, layer, x, classes, **kw):
    from tf_keras_vis.utils.model_modifiers import ReplaceToLinear
    from tf_keras_vis.utils.scores import CategoricalScore

    tool = cls(model, model_modifier=ReplaceToLinear(), clone=True)
    raw = tool(CategoricalScore(list(classes)), x, penultimate_layer=layer, expand_cam=False, normalize_cam=False, **kw)
    return relu_max(np.asarray(raw, np.float64))


@pytest.mark.tensorflow_only
def test_layercam_matches_tf_keras_vis(model, x):
    from tf_keras_vis.layercam import Layercam

    peer = _tf_keras_vis(model, Layercam, "conv_b", x, CLASSES)
    assert_close(cw.compute_cam(model, x, layer="conv_b", method="layercam", class_index=CLASSES), peer)


@pytest.mark.tensorflow_only
def test_scorecam_matches_tf_keras_vis_where_masks_need_no_resizing(model, x):
    """tf-keras-vis also weights each channel by the masked input's class probability; it resizes masks
    with scipy's zoom where we resize bilinearly, so compare at conv_a, which has the input's size."""
    from tf_keras_vis.scorecam import Scorecam

    peer = _tf_keras_vis(model, Scorecam, "conv_a", x, CLASSES)
    assert_close(cw.compute_cam(model, x, layer="conv_a", method="scorecam", class_index=CLASSES), peer)


@pytest.mark.tensorflow_only
def test_gradcam_plus_plus_vs_tf_keras_vis_differs_only_by_alpha_renormalisation(model, x):
    """tf-keras-vis divides alpha by its spatial sum (a departure from the paper); with that change our
    reference formula gives its map, and without it, ours."""
    from tf_keras_vis.gradcam_plus_plus import GradcamPlusPlus

    peer = _tf_keras_vis(model, GradcamPlusPlus, "conv_b", x, CLASSES)
    A, G = activations_and_gradients(model, "conv_b", x, CLASSES)
    renormalised = []
    for a, g in zip(A, G):
        denom = 2 * g**2 + a.sum(axis=(0, 1)) * g**3
        alpha = np.where(g != 0, g**2 / np.where(denom != 0, denom, 1), 0)
        alpha = alpha / np.where(alpha.sum(axis=(0, 1)) != 0, alpha.sum(axis=(0, 1)), 1)
        renormalised.append((a * (alpha * np.maximum(g, 0)).sum(axis=(0, 1))).sum(-1))
    np.testing.assert_allclose(peer, relu_max(np.array(renormalised)), atol=TOL)
    ours = cw.compute_cam(model, x, layer="conv_b", method="gradcam++", class_index=CLASSES)
    assert_close(ours, ref_gradcam_pp(A, G))
    assert np.abs(ours - peer).max() > 0.01


def test_every_method_is_in_the_explorer(small, rng):
    ex = cw.CAMExplorer(small, rng.integers(0, 256, (40, 40, 3), dtype=np.uint8))
    assert [v for _, v in ex.controls["method"].options] == list(cw.METHODS)
    backend = keras.backend.backend()
    # What only the TensorFlow engine computes (guided backpropagation, a Hessian-vector product of the layers
    # after the layer, the input's gradient): refused on JAX and torch in words, the last method kept.
    tensorflow_only = {
        "guided-gradcam": f"needs the TensorFlow backend, and Keras runs on '{backend}'",
        "shapley-cam": "which needs the TensorFlow backend",
        "fullgrad": "which only the TensorFlow backend computes here",
    }
    for name in cw.METHODS:
        if name in tensorflow_only and backend != "tensorflow":
            with pytest.raises(ValueError, match=tensorflow_only[name]):
                ex.method = name
            assert tensorflow_only[name] in ex.status_text
            assert ex.method != name and ex.controls["method"].value != name
            continue
        ex.method = name
        assert np.isfinite(ex.cam).all() and ex.overlay.shape == (40, 40, 3)
        assert "✖" not in ex.status_text, ex.status_text
    ex.close()


def test_every_method_documents_its_formula():
    for method in cw.METHODS.values():
        doc = method.compute.__doc__ or ""
        assert "20" in doc and ("=" in doc or "times" in doc), method.name  # a year of the paper and a formula
