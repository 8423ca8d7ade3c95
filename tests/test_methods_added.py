"""The methods of issue 28 (Ablation-CAM, SS-CAM, IS-CAM, Smooth Grad-CAM++, Finer-CAM, KPCA-CAM's options): each
equals its formula written out here (a hand split of the model into the layers before and after the layer, NumPy
for the rest) within 1e-4; each option refuses a bad value naming it and its range; and each runs, or refuses
with a sentence that says why, on every kind of model the other methods take."""

from __future__ import annotations

import re

import cv2
import keras
import models
import numpy as np
import pytest
from keras import layers, ops
from reference import dense_logits
from reference import gradient as autodiff_gradient
from test_methods import CLASSES, activations_and_gradients, relu_max, split

import camwidget as cw
from camwidget.methods import gradient, perturbation

TOL = 1e-4
as_numpy = ops.convert_to_numpy


def cam(model, x, method, layer="conv_b", **kw):
    return cw.compute_cam(model, x, layer=layer, method=method, class_index=CLASSES, **kw)


def assert_close(ours, ref):
    assert ref.max() > 0
    np.testing.assert_allclose(ours, ref, atol=TOL)


def unit_masks(a, size):
    """Score-CAM's masks: each channel resized bilinearly to the input (OpenCV, as the authors' code) and
    scaled to [0, 1]: (k, H, W)."""
    out = []
    for c in range(a.shape[-1]):
        up = cv2.resize(a[..., c], (size, size), interpolation=cv2.INTER_LINEAR)
        out.append((up - up.min()) / (up.max() - up.min() + 1e-7))
    return np.array(out, np.float32)


def probability(model, image, c):
    return float(as_numpy(model(image[None]))[0, c])


# -- Ablation-CAM ------------------------------------------------------------------------------------------------


def ref_ablation(model, layer, x, classes, keep=None):
    """w_k = (y_c - y_c^k) / |y_c| with y_c^k the logit after channel k of the layer is set to 0."""
    features, logits = split(model, layer)
    A = as_numpy(features(x)).astype(np.float64)
    maps = []
    for n, c in enumerate(classes):
        y = float(as_numpy(logits(A[n : n + 1].astype("float32")))[0, c])
        m = np.zeros(A.shape[1:3])
        for k in range(A.shape[-1]) if keep is None else keep[n]:
            ablated = A[n : n + 1].copy()
            ablated[..., k] = 0
            yk = float(as_numpy(logits(ablated.astype("float32")))[0, c])
            m += (y - yk) / abs(y) * A[n, ..., k]
        maps.append(m)
    return relu_max(np.array(maps))


@pytest.mark.parametrize("layer", ["conv_a", "conv_c"])
def test_ablation_cam_matches_its_formula(model, x, layer):
    assert_close(cam(model, x, "ablation-cam", layer), ref_ablation(model, layer, x, CLASSES))


def test_ablation_cam_channel_bound_ablates_the_most_varied_channels(model, x):
    A = as_numpy(split(model, "conv_b")[0](x))
    keep = [np.argsort(-a.reshape(-1, a.shape[-1]).std(axis=0), kind="stable")[:4] for a in A]
    assert_close(cam(model, x, "ablation-cam", max_channels=4), ref_ablation(model, "conv_b", x, CLASSES, keep))


# -- SS-CAM and IS-CAM: Score-CAM's masks, smoothed or integrated ----------------------------------------------------


def ref_sscam(model, layer, x, classes, samples, noise):
    """w_k = mean over samples of p_c(x * (M_k + d)), d ~ N(0, noise^2), drawn image by image, sample by sample,
    for all of an image's masks at once, from numpy's default_rng(SEED) (the order the docstring gives)."""
    A = as_numpy(split(model, layer)[0](x))
    rng = np.random.default_rng(perturbation.SEED)
    maps = []
    for n, c in enumerate(classes):
        masks = unit_masks(A[n], x.shape[1])
        noises = [rng.normal(0.0, noise, (*masks.shape, 1)).astype(np.float32) for _ in range(samples)]
        w = [
            np.mean([probability(model, x[n] * (masks[k][..., None] + d[k]), c) for d in noises])
            for k in range(len(masks))
        ]
        maps.append((A[n] * np.array(w)).sum(-1))
    return relu_max(np.array(maps))


def ref_iscam(model, layer, x, classes, steps):
    """w_k = (1/n) sum_{i=1..n} p_c(x * (i/n) M_k)."""
    A = as_numpy(split(model, layer)[0](x))
    maps = []
    for n, c in enumerate(classes):
        masks = unit_masks(A[n], x.shape[1])
        w = [
            np.mean([probability(model, x[n] * (i / steps) * m[..., None], c) for i in range(1, steps + 1)])
            for m in masks
        ]
        maps.append((A[n] * np.array(w)).sum(-1))
    return relu_max(np.array(maps))


def test_sscam_matches_its_formula(model, x):
    ours = cam(model, x, "sscam", "conv_c", method_options={"samples": 3, "noise": 0.5})
    assert_close(ours, ref_sscam(model, "conv_c", x, CLASSES, 3, 0.5))
    assert np.abs(ours - cam(model, x, "scorecam", "conv_c")).max() > 1e-3  # the noise changes the weights


def test_iscam_matches_its_formula(model, x):
    assert_close(cam(model, x, "iscam(steps=3)", "conv_c"), ref_iscam(model, "conv_c", x, CLASSES, 3))


def test_scorecam_is_unchanged_by_the_shared_path(model, x):
    A = as_numpy(split(model, "conv_c")[0](x))
    ref = [
        (A[n] * np.array([probability(model, x[n] * m[..., None], c) for m in unit_masks(A[n], 32)])).sum(-1)
        for n, c in enumerate(CLASSES)
    ]
    assert_close(cam(model, x, "scorecam", "conv_c"), relu_max(np.array(ref)))


# -- Smooth Grad-CAM++ and Finer-CAM: gradients of other inputs and other classes ----------------------------------


def ref_smooth_gradcam_pp(model, layer, x, classes, samples, noise):
    """D_p = mean over noisy copies of G^p; alpha = D2 / (2 D2 + sum(A) D3); w = sum alpha ReLU(D1); A clean."""
    rng = np.random.default_rng(gradient.SEED)
    spread = (x.max(axis=(1, 2, 3)) - x.min(axis=(1, 2, 3)))[:, None, None, None].astype(np.float64)
    d = {1: 0.0, 2: 0.0, 3: 0.0}
    for _ in range(samples):
        noisy = (x + rng.standard_normal(x.shape) * noise * spread).astype("float32")
        _, g = activations_and_gradients(model, layer, noisy, classes)
        for p in d:
            d[p] = d[p] + g**p / samples
    A, _ = activations_and_gradients(model, layer, x, classes)
    maps = []
    for n in range(len(x)):
        m = np.zeros(A.shape[1:3])
        for k in range(A.shape[-1]):
            d1, d2, d3, a = d[1][n, ..., k], d[2][n, ..., k], d[3][n, ..., k], A[n, ..., k]
            denominator = 2 * d2 + a.sum() * d3
            alpha = np.where(d2 != 0, d2 / np.where(denominator != 0, denominator, 1e-7), 0)
            m += (alpha * np.maximum(d1, 0)).sum() * a
        maps.append(m)
    return relu_max(np.array(maps))


def test_smooth_gradcam_pp_matches_its_formula(model, x):
    ours = cam(model, x, "smooth-gradcam++", method_options={"samples": 3, "noise": 0.2})
    assert_close(ours, ref_smooth_gradcam_pp(model, "conv_b", x, CLASSES, 3, 0.2))
    assert np.abs(ours - cam(model, x, "gradcam++")).max() > 1e-3


@pytest.mark.parametrize("images, samples, passes", [(1, 8, [1, 8]), (3, 5, [3, 6, 6, 3]), (3, 8, [3, 6, 6, 6, 6])])
def test_smooth_gradcam_pp_sends_its_noisy_copies_through_the_tape_together(
    model, x, monkeypatch, images, samples, passes
):
    """One clean capture of the images, then the noisy copies in passes of NOISY_BATCH (8) images at most,
    whole copies of the batch each (one image's 8 default copies: one pass); the map is the same as copy by copy
    (the formula test above)."""
    sizes = []
    capture = cw.engines.base.Engine.capture

    def counted(self, x, *args, **kw):
        sizes.append(len(x))
        return capture(self, x, *args, **kw)

    monkeypatch.setattr(cw.engines.base.Engine, "capture", counted)
    cw.compute_cam(model, x[:images], layer="conv_b", method="smooth-gradcam++", method_options={"samples": samples})
    assert sizes == passes


def ref_finer(model, layer, x, classes, gamma, top=None, references=None, base="gradcam"):
    """The base method's map for the score y_c - gamma * mean_j y_j over the `top` classes whose logits are
    nearest y_c (or the given references), differentiated by the hand split."""
    features, logits = split(model, layer)
    z = as_numpy(logits(features(x)))
    refs = []
    for n, c in enumerate(classes):
        if references is not None:
            refs.append(list(references))
        else:
            order = sorted((j for j in range(z.shape[1]) if j != c), key=lambda j: (abs(z[n, j] - z[n, c]), j))
            refs.append(order[:top])
    A, G = activations_and_gradients(model, layer, x, classes)
    Gr = [activations_and_gradients(model, layer, x, [r[j] for r in refs])[1] for j in range(len(refs[0]))]
    G = G - gamma * np.mean(Gr, axis=0)
    if base == "gradcam":
        return relu_max((A * G.mean(axis=(1, 2), keepdims=True)).sum(-1))
    return relu_max((np.maximum(G, 0) * A).sum(-1))  # layercam


def test_finer_cam_matches_its_formula(model, x):
    # flat_head_cnn has 3 classes: the 2 others are the references, nearest first
    assert_close(cam(model, x, "finer-cam"), ref_finer(model, "conv_b", x, CLASSES, 0.6, top=3))
    assert_close(cam(model, x, "finer-cam(top=1)"), ref_finer(model, "conv_b", x, CLASSES, 0.6, top=1))
    classes = [1, 2, 1]
    ours = cw.compute_cam(
        model, x, layer="conv_c", class_index=classes, method="finer-cam(base='layercam', gamma=0.3, references=(0,))"
    )
    assert_close(ours, ref_finer(model, "conv_c", x, classes, 0.3, references=[0], base="layercam"))
    options = {"base": "layercam", "gamma": 0.3, "references": [0]}
    same = cw.compute_cam(model, x, layer="conv_c", class_index=classes, method="finer-cam", method_options=options)
    np.testing.assert_array_equal(ours, same)
    # gamma = 0 is the base method itself
    np.testing.assert_allclose(cam(model, x, "finer-cam(gamma=0)"), cam(model, x, "gradcam"), atol=1e-5)


def test_finer_cam_refuses_references_it_cannot_use(model, x):
    with pytest.raises(ValueError, match=r"references must be classes of the output \(0 to 2\), not 7"):
        cam(model, x, "finer-cam(references=(7,))")
    with pytest.raises(ValueError, match=r"must not include the class being explained \(0\)"):
        cam(model, x, "finer-cam(references=(0,))")
    with pytest.raises(ValueError, match=r"references must be None or one or more class indices"):
        cam(model, x, "finer-cam", method_options={"references": [-1]})


# -- Shapley-CAM and the ReST score ----------------------------------------------------------------------------------


def rest_scores(z, classes):
    """ReST: z_c + log softmax(z)_c, per image."""
    return ops.stack([z[n, c] + ops.log_softmax(z[n])[c] for n, c in enumerate(classes)])


@pytest.mark.tensorflow_only  # the Hessian-vector product runs on TensorFlow's tail pass
def test_shapley_cam_matches_its_formula_under_rest(model, x):
    """w_k = mean_ij (G - H A / 2)_k with y = z_c + log p_c, G and H A by two nested GradientTapes."""
    import tensorflow as tf

    features, logits = split(model, "conv_b")
    A = tf.convert_to_tensor(features(x))
    with tf.GradientTape() as outer:
        outer.watch(A)
        with tf.GradientTape() as inner:
            inner.watch(A)
            y = tf.reduce_sum(rest_scores(logits(A), CLASSES))
        G = inner.gradient(y, A)
        along = tf.reduce_sum(G * tf.stop_gradient(A))
    HA = outer.gradient(along, A).numpy().astype(np.float64)
    G, A = G.numpy().astype(np.float64), A.numpy().astype(np.float64)
    assert np.abs(HA).max() > 1e-6  # the log-softmax is curved
    ref = relu_max((A * (G - 0.5 * HA).mean(axis=(1, 2), keepdims=True)).sum(-1))
    assert_close(cam(model, x, "shapley-cam", score="rest"), ref)
    # under "auto" the layers after conv_b are piecewise linear: H A = 0, Grad-CAM's map
    np.testing.assert_allclose(cam(model, x, "shapley-cam"), cam(model, x, "gradcam"), atol=1e-5)


def test_the_rest_score_is_the_logit_plus_the_log_probability(model, x):
    features, logits = split(model, "conv_b")
    A, G = activations_and_gradients(model, "conv_b", x, CLASSES)
    Gr = autodiff_gradient(
        lambda a: ops.sum(rest_scores(logits(a), CLASSES)), ops.convert_to_tensor(A.astype("float32"))
    )
    assert_close(cam(model, x, "gradcam", score="rest"), relu_max((A * Gr.mean(axis=(1, 2), keepdims=True)).sum(-1)))
    assert np.abs(Gr - G).max() > 1e-4  # not the logits' gradient


def test_the_rest_score_is_refused_with_a_target(model, x):
    with pytest.raises(ValueError, match=r'score="rest" is a class\'s score'):
        cw.compute_cam(model, x, layer="conv_b", score="rest", target=cw.targets.Unit(0))


@pytest.mark.tensorflow_only
def test_shapley_cam_says_why_not_without_a_tail(model_kinds):
    sub, images, _, _ = model_kinds["subclassed"]
    with pytest.raises(ValueError, match="Shapley-CAM differentiates the layers after .* twice"):
        cw.compute_cam(sub, images, method="shapley-cam")


# -- FullGrad -------------------------------------------------------------------------------------------------------


def psi_sum(terms, size):
    """Each channel map of (h, w, K) shifted to 0, over (1e-7 + its max), resized bilinearly, summed."""
    out = np.zeros((size, size))
    for k in range(terms.shape[-1]):
        m = terms[..., k] - terms[..., k].min()
        out += cv2.resize(np.float32(m / (1e-7 + m.max())), (size, size))
    return out


def ref_fullgrad(model, x):
    """The flat-head model written out in tf ops, its convolutions' outputs before the ReLU (z) kept, dy/dx and
    dy/dz by one GradientTape; |dy/dx * x| and |b * dy/dz| summed over channels after psi."""
    import tensorflow as tf

    L = model.get_layer
    xt = tf.convert_to_tensor(x)
    zs = {}
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(xt)

        def conv(name, v):
            zs[name] = tf.nn.conv2d(v, L(name).kernel, 1, "SAME") + L(name).bias
            tape.watch(zs[name])
            return tf.nn.relu(zs[name])

        v = conv("conv_c", conv("conv_b", tf.nn.max_pool2d(conv("conv_a", xt), 2, 2, "VALID")))
        z = dense_logits(L("dense"), tf.reshape(v, (len(x), -1)))
        y = tf.reduce_sum(tf.stack([z[n, c] for n, c in enumerate(CLASSES)]))
    dx = tape.gradient(y, xt).numpy()
    dz = {name: tape.gradient(y, t).numpy() for name, t in zs.items()}
    maps = []
    for n in range(len(x)):
        m = psi_sum(np.abs(dx[n] * x[n]), 32)
        for name in zs:
            m += psi_sum(np.abs(as_numpy(L(name).bias) * dz[name][n]), 32)
        maps.append(m)
    return relu_max(np.array(maps))


@pytest.mark.tensorflow_only
def test_fullgrad_matches_its_formula(model, x):
    ours = cam(model, x, "fullgrad")
    assert ours.shape == (3, 32, 32)  # the input's resolution, whatever the layer
    assert_close(ours, ref_fullgrad(model, x))
    np.testing.assert_array_equal(ours, cam(model, x, "fullgrad", layer="conv_a"))


@pytest.mark.tensorflow_only
def test_fullgrad_is_its_one_pass_alone(model, x, calls):
    """compute_cam runs FullGrad's own pass (forward, and backward to the input) and no capture of the layer."""
    cam(model, x, "fullgrad")
    assert calls == [("capture_with_input_gradient", True)]


@pytest.mark.tensorflow_only
def test_fullgrad_reads_the_biases_as_they_are_when_it_runs(model, x):
    """The biases are read inside the traced pass: a bias changed after the pass was traced is the one used."""
    copy = keras.models.clone_model(model)
    copy.set_weights(model.get_weights())
    before = cam(copy, x, "fullgrad")
    bias = copy.get_layer("conv_b").bias
    bias.assign(as_numpy(bias) + np.linspace(-0.5, 0.5, bias.shape[0]).astype("float32"))
    after = cam(copy, x, "fullgrad")
    assert np.abs(after - before).max() > 1e-2
    assert_close(after, ref_fullgrad(copy, x))


@pytest.mark.tensorflow_only
def test_fullgrad_takes_a_batch_normalisations_effective_bias(x):
    """A convolution without a bias, then a batch normalisation (its moving statistics set), then a ReLU layer:
    the only bias FullGrad counts is the normalisation's b = beta - mu gamma / sqrt(var + eps), with dy/dz at its
    output, written out here in tf ops."""
    import tensorflow as tf

    keras.utils.set_random_seed(3)
    inp = keras.Input((32, 32, 3))
    h = layers.Conv2D(4, 3, padding="same", use_bias=False, name="conv")(inp)
    h = layers.ReLU()(layers.BatchNormalization(name="bn")(h))
    m = keras.Model(inp, layers.Dense(3, activation="softmax", name="dense")(layers.GlobalAveragePooling2D()(h)))
    rng = np.random.default_rng(2)
    bn = m.get_layer("bn")
    gamma, beta, mean, var = (
        rng.uniform(lo, hi, 4).astype("float32") for lo, hi in [(0.5, 2), (-1, 1), (-1, 1), (0.5, 2)]
    )
    beta[0], mean[0] = 0.0, 0.7  # psi scales each channel to [0, 1], so a bias counts by being zero or not: here
    # only the effective bias is nonzero, so reading beta alone would drop the channel
    bn.set_weights([gamma, beta, mean, var])
    classes = [0, 2, 1]
    xt = tf.convert_to_tensor(x)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(xt)
        z = (tf.nn.conv2d(xt, m.get_layer("conv").kernel, 1, "SAME") - mean) / np.sqrt(var + bn.epsilon) * gamma + beta
        tape.watch(z)
        logits = dense_logits(m.get_layer("dense"), tf.reduce_mean(tf.nn.relu(z), axis=(1, 2)))
        y = tf.reduce_sum(tf.stack([logits[n, c] for n, c in enumerate(classes)]))
    dx, dz = tape.gradient(y, xt).numpy(), tape.gradient(y, z).numpy()
    bias = beta - mean * gamma / np.sqrt(var + bn.epsilon)
    maps = [psi_sum(np.abs(dx[n] * x[n]), 32) + psi_sum(np.abs(bias * dz[n]), 32) for n in range(len(x))]
    ours = cw.compute_cam(m, x, method="fullgrad", class_index=classes)
    assert_close(ours, relu_max(np.array(maps)))


@pytest.mark.tensorflow_only
def test_fullgrad_refuses_a_model_without_biases(x):
    inp = keras.Input((32, 32, 3))
    h = layers.Conv2D(4, 3, padding="same", use_bias=False, activation="relu", name="plain")(inp)
    m = keras.Model(inp, layers.Dense(2, activation="softmax")(layers.GlobalAveragePooling2D()(h)))
    with pytest.raises(ValueError, match="FullGrad adds up the gradients of the biases .* this model has none"):
        cw.compute_cam(m, x, method="fullgrad")


# -- KPCA-CAM's kernel and gamma --------------------------------------------------------------------------------------


def ref_kpca(A, kernel, gamma):
    """scikit-learn's KernelPCA, first component, of the centred (h*w, K) activations, signed to agree with their sum."""
    from sklearn.decomposition import KernelPCA

    maps = []
    for a in A:
        h, w, k = a.shape
        x = a.reshape(h * w, k) - a.reshape(h * w, k).mean(axis=0)
        p = KernelPCA(n_components=1, kernel=kernel, gamma=gamma).fit_transform(x)[:, 0]
        maps.append(p.reshape(h, w) * (1 if np.dot(p, a.reshape(h * w, k).sum(axis=1)) >= 0 else -1))
    return relu_max(np.array(maps))


@pytest.mark.tensorflow_only  # scikit-learn comes with the peers, in the TensorFlow run
@pytest.mark.parametrize(
    "kernel, gamma", [("rbf", None), ("rbf", 0.01), ("poly", 0.05), ("linear", None), ("cosine", None)]
)
def test_kpca_cam_kernels_match_scikit_learn(model, x, kernel, gamma):
    A = as_numpy(split(model, "conv_b")[0](x)).astype(np.float64)
    ours = cam(model, x, "kpca-cam", method_options={"kernel": kernel, "gamma": gamma})
    assert_close(ours, ref_kpca(A, kernel, gamma))


def test_kpca_cam_on_a_layer_of_one_position_says_so():
    inp = keras.Input((8, 8, 3))
    h = layers.Conv2D(4, 8, name="one_position")(layers.Conv2D(4, 3, padding="same")(inp))
    m = keras.Model(inp, layers.Dense(2, activation="softmax")(layers.Flatten()(h)))
    with pytest.raises(ValueError, match="layer 'one_position' has a 1x1 output: one position, so there is nothing"):
        cw.compute_cam(m, np.ones((1, 8, 8, 3), "float32"), layer="one_position", method="kpca-cam")


# -- options: how they are given, and bad values -----------------------------------------------------------------


def test_settings_go_in_by_name_or_by_method_options_and_defaults_are_left_out_of_the_name(model, x):
    from camwidget.methods import get_method, method_name

    assert method_name("iscam", {"steps": 10}) == "iscam"
    assert method_name("iscam", {"steps": 4}) == "iscam(steps=4)" == get_method("ISCAM( steps = 4 )").name
    np.testing.assert_array_equal(cam(model, x, "iscam(steps=2)"), cam(model, x, "iscam", method_options={"steps": 2}))


@pytest.mark.parametrize(
    "method, options, message",
    [
        ("sscam", {"samples": 0}, "samples must be an int >= 1 and <= 1000, not 0"),
        ("sscam", {"samples": 2.5}, "samples must be an int >= 1 and <= 1000, not 2.5"),
        ("sscam", {"noise": -1}, "noise must be a number > 0 and <= 100, not -1"),
        ("iscam", {"steps": True}, "steps must be an int >= 1 and <= 1000, not True"),
        ("iscam", {"step": 3}, "method 'iscam' has no setting 'step'; it takes 'steps'"),
        ("gradcam", {"gamma": 1}, "method 'gradcam' has no setting 'gamma'; it takes none"),
        ("finer-cam", {"gamma": -0.1}, "gamma must be a number >= 0 and <= 10, not -0.1"),
        ("finer-cam", {"top": 0}, "top must be an int >= 1 and <= 1000, not 0"),
        ("finer-cam", {"base": "scorecam"}, "base must be one of 'gradcam', 'gradcam++', 'layercam', not 'scorecam'"),
        ("smooth-gradcam++", {"noise": 0}, "noise must be a number > 0 and <= 10, not 0"),
        (
            "kpca-cam",
            {"kernel": "laplace"},
            "kernel must be one of 'sigmoid', 'rbf', 'poly', 'linear', 'cosine', not 'laplace'",
        ),
        ("kpca-cam", {"gamma": 0}, "gamma must be a number > 0, not 0"),
    ],
)
def test_a_bad_setting_is_refused_naming_it_and_its_range(model, x, method, options, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        cam(model, x, method, method_options=options)


def test_a_setting_that_cannot_be_read_shows_the_form(model, x):
    with pytest.raises(ValueError, match=r"write its settings as method\(option=value, ...\)"):
        cam(model, x, "iscam(steps=)")


def test_every_method_says_its_family_and_cost():
    for method in cw.METHODS.values():
        assert method.family in ("gradient", "perturbation", "activation", "contrastive", "model-based", "baseline")
        assert "pass" in method.cost, method.name


# -- every kind of model ---------------------------------------------------------------------------------------------

ADDED = [
    "ablation-cam",
    "sscam(samples=2)",
    "iscam(steps=2)",
    "smooth-gradcam++(samples=2)",
    "finer-cam",
    "shapley-cam",
    "fullgrad",
]
KINDS = ["nested", "subclassed", "signal", "clip", "two inputs", "tokens"]


class Subclassed(keras.Model):
    def __init__(self):
        super().__init__()
        self.conv = layers.Conv2D(6, 3, padding="same", activation="relu", name="conv")
        self.gap = layers.GlobalAveragePooling2D()
        self.dense = layers.Dense(3, activation="softmax")

    def call(self, x):
        return self.dense(self.gap(self.conv(x)))


def kinds():
    """(name, model, input, layer, compute_cam's other keywords) for each kind of model."""
    keras.utils.set_random_seed(3)
    rng = np.random.default_rng(3)
    image = rng.uniform(0, 1, (2, 16, 16, 3)).astype("float32")
    nested = models.nested_three_deep(size=16)
    sub = Subclassed()
    sub(image)
    inp = keras.Input((40, 2))
    h = layers.Conv1D(6, 3, padding="same", activation="relu", name="conv")(inp)
    signal = keras.Model(inp, layers.Dense(3, activation="softmax")(layers.GlobalAveragePooling1D()(h)))
    clip_in = keras.Input((3, 8, 8, 3))
    h = layers.TimeDistributed(layers.Conv2D(4, 3, padding="same", activation="relu"), name="frames")(clip_in)
    clip = keras.Model(clip_in, layers.Dense(3, activation="softmax")(layers.GlobalAveragePooling3D()(h)))
    im, meta = keras.Input((16, 16, 3), name="image"), keras.Input((4,), name="meta")
    h = layers.GlobalAveragePooling2D()(layers.Conv2D(6, 3, padding="same", activation="relu", name="conv")(im))
    h = layers.Multiply()([h, layers.Dense(6, activation="sigmoid")(meta)])
    two = keras.Model({"image": im, "meta": meta}, layers.Dense(3, activation="softmax")(h))
    tok_in = keras.Input((16, 16, 3))
    h = layers.Reshape((16, 12))(layers.Conv2D(12, 4, strides=4, name="patches")(tok_in))
    h = layers.Dense(8, activation="relu", name="tokens")(h)
    tokens = keras.Model(tok_in, layers.Dense(3, activation="softmax")(layers.GlobalAveragePooling1D()(h)))
    return [
        ("nested", nested, image, "middle/inner/deep_conv", {}),
        ("subclassed", sub, image, None, {}),
        ("signal", signal, rng.uniform(0, 1, (2, 40, 2)).astype("float32"), "conv", {}),
        ("clip", clip, rng.uniform(0, 1, (2, 3, 8, 8, 3)).astype("float32"), "frames", {}),
        ("two inputs", two, image, "conv", {"input": "image", "other_inputs": {"meta": np.ones((1, 4), "float32")}}),
        ("tokens", tokens, image, "tokens", {}),
    ]


@pytest.fixture(scope="module")
def model_kinds():
    return {k[0]: k[1:] for k in kinds()}


# where a method refuses a kind of model, the reason it gives
REFUSED = {
    ("ablation-cam", "subclassed"): "does not show those layers",
    ("ablation-cam", "two inputs"): "does not show those layers",
    ("shapley-cam", "subclassed"): "a model that shows those layers",
    ("shapley-cam", "two inputs"): "a model that shows those layers",
    ("fullgrad", "signal"): "works on image models",
    ("fullgrad", "clip"): "works on image models",
    ("sscam", "signal"): "works on image models",
    ("sscam", "clip"): "works on image models",
    ("iscam", "signal"): "works on image models",
    ("iscam", "clip"): "works on image models",
}


# the methods whose second pass (Shapley-CAM's Hessian-vector product, FullGrad's input gradient) only the
# TensorFlow engine makes
TENSORFLOW_ONLY = ("shapley-cam", "fullgrad")


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("method", ADDED)
def test_each_added_method_runs_or_says_why_not_on_every_kind_of_model(model_kinds, method, kind):
    model, images, layer, kw = model_kinds[kind]
    name = method.partition("(")[0]
    reason = REFUSED.get((name, kind))
    if reason is None and keras.backend.backend() != "tensorflow" and name in TENSORFLOW_ONLY:
        reason = "TensorFlow backend"  # refused in words on JAX and torch on every model they fit
    if reason:
        with pytest.raises(ValueError, match=reason):
            cw.compute_cam(model, images, method=method, layer=layer, **kw)
        return
    maps = cw.compute_cam(model, images, method=method, layer=layer, **kw)
    plain = cw.compute_cam(model, images, method="gradcam", layer=layer, **kw)
    expected = images.shape[1:3] if cw.METHODS[method.partition("(")[0]].input_resolution else plain.shape[1:]
    assert maps.shape[1:] == expected and np.isfinite(maps).all() and maps.max() == 1.0


@pytest.mark.parametrize("method", ADDED)
def test_the_added_methods_refuse_a_target(model, x, method):
    with pytest.raises(ValueError, match="target"):
        cw.compute_cam(model, x, method=method, layer="conv_b", target=cw.targets.ClassScore(1))
