"""Each CAM method against pytorch-grad-cam's (or torch-cam's) own implementation, on the same weights: a
small torch twin of a Keras CNN with the Keras weights copied in (kernels transposed to torch's layout, the Flatten
order mapped), both maps put through the peer's own scaling (ReLU, min-max, resize to the input), equal within 1e-4.

Where the definitions differ, the test says how and checks what can be compared:
- Grad-CAM++: pytorch-grad-cam adds 1e-6 to alpha's denominator, the paper (and camwidget) does not.
- Eigen-CAM, Eigen-Grad-CAM, KPCA-CAM: a principal component's sign is arbitrary. pytorch-grad-cam keeps the
  sign its SVD (or scikit-learn) returns; camwidget signs it to agree with the summed activations. The raw
  projections are compared up to that sign.
- Score-CAM: pytorch-grad-cam weighs channel k by a softmax over the channels of the masked inputs' class
  logits; the authors' code, tf-keras-vis and camwidget by the masked input's class probability (a softmax over
  the classes). camwidget's is checked against its formula and tf-keras-vis in tests/test_methods.py.
- Random-CAM: a random draw; both are w_k A_k with w ~ U(-1, 1) (checked from its formula in test_methods).
- SS-CAM, IS-CAM, Smooth Grad-CAM++ (torch-cam 0.5), each with the noise fixed to camwidget's draws on both sides:
  torch-cam weighs SS-CAM's and IS-CAM's channels by a softmax over the channels of the logit gains, camwidget by
  the class probability as its Score-CAM. Handed the twin with a softmax on top, torch-cam's weights are the
  channel softmax of camwidget's, and its maps equal camwidget's weights put through that softmax (at conv_a,
  where neither upsamples). IS-CAM: torch-cam scales its i-th input by a running sum of the i/n, camwidget by i/n;
  they agree at one step, and each side's weights equal its reading written out. Smooth Grad-CAM++: torch-cam's
  map equals its own reading (alpha's denominator, the last copy's gradient and activations) written out from
  camwidget's noisy gradients, and camwidget's the paper's from the same gradients.
"""

from __future__ import annotations

import importlib.util
import sys
import types

import cv2
import keras
import numpy as np
import pytest
from keras import layers

import camwidget as cw

pytestmark = pytest.mark.tensorflow_only  # torch and TensorFlow in one process: the TensorFlow run only
torch = pytest.importorskip("torch")

TOL = 1e-4
SIZE = 24


@pytest.fixture(scope="module")
def pgc():
    """pytorch_grad_cam, imported with a stand-in for torchvision where it is missing: it imports torchvision's
    transforms only for image helpers these tests never call (tests/install_peers.sh says why)."""
    if importlib.util.find_spec("pytorch_grad_cam") is None:
        pytest.fail("pytorch-grad-cam is not installed: run sh tests/install_peers.sh")
    stand_in = {}
    if importlib.util.find_spec("torchvision") is None:
        for name in ("torchvision", "torchvision.transforms", "torchvision.transforms.functional"):
            module = types.ModuleType(name)
            module.__path__ = []  # a package, so its submodules import
            module.__getattr__ = lambda attribute: object  # any name it is asked for: never called here
            stand_in[name] = module
    with pytest.MonkeyPatch.context() as patch:  # the stand-ins leave sys.modules with the module's tests
        for name, module in stand_in.items():
            patch.setitem(sys.modules, name, module)
        import pytorch_grad_cam
        from pytorch_grad_cam.utils import svd_on_activations
        from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

        yield types.SimpleNamespace(cams=pytorch_grad_cam, svd=svd_on_activations, target=ClassifierOutputTarget)


@pytest.fixture(scope="module")
def twins():
    """A Keras CNN (conv_a at the input's resolution, a pool, conv_b, conv_c, Flatten, Dense) and its torch twin."""
    keras.utils.set_random_seed(11)
    inp = keras.Input((SIZE, SIZE, 3))
    x = layers.Conv2D(6, 3, padding="same", activation="relu", name="conv_a")(inp)
    x = layers.MaxPooling2D(name="pool")(x)
    x = layers.Conv2D(8, 3, padding="same", activation="relu", name="conv_b")(x)
    x = layers.Conv2D(5, 3, padding="same", activation="relu", name="conv_c")(x)
    x = layers.Flatten()(x)
    model = keras.Model(inp, layers.Dense(4, activation="softmax", name="dense")(x))

    def conv(name: str) -> torch.nn.Conv2d:
        kernel, bias = model.get_layer(name).get_weights()
        c = torch.nn.Conv2d(kernel.shape[2], kernel.shape[3], 3, padding=1)
        c.weight.data = torch.from_numpy(np.ascontiguousarray(kernel.transpose(3, 2, 0, 1)))
        c.bias.data = torch.from_numpy(bias)
        return c

    kernel, bias = model.get_layer("dense").get_weights()
    side, channels = SIZE // 2, 5
    dense = torch.nn.Linear(kernel.shape[0], kernel.shape[1])
    # Keras flattens (h, w, c), torch (c, h, w): the same weights, rows reordered
    dense.weight.data = torch.from_numpy(
        np.ascontiguousarray(
            kernel.reshape(side, side, channels, -1).transpose(3, 2, 0, 1).reshape(kernel.shape[1], -1)
        )
    )
    dense.bias.data = torch.from_numpy(bias)
    relus = {name: torch.nn.ReLU() for name in ("conv_a", "conv_b", "conv_c")}
    twin = torch.nn.Sequential(
        conv("conv_a"),
        relus["conv_a"],
        torch.nn.MaxPool2d(2),
        conv("conv_b"),
        relus["conv_b"],
        conv("conv_c"),
        relus["conv_c"],
        torch.nn.Flatten(),
        dense,
    ).eval()
    return model, twin, relus


@pytest.fixture(scope="module")
def x():
    return np.random.default_rng(5).uniform(0, 1, (3, SIZE, SIZE, 3)).astype("float32")


CLASSES = [0, 3, 1]


def as_pgc_scales_it(raw: np.ndarray) -> np.ndarray:
    """pytorch-grad-cam's own scaling of a map: ReLU, min-max, resize to the input (OpenCV), ReLU, min-max."""
    out = []
    for m in np.maximum(raw, 0):
        m = m - m.min()
        m = cv2.resize(np.float32(m / (1e-7 + m.max())), (SIZE, SIZE))
        m = np.maximum(m, 0) - np.maximum(m, 0).min()
        out.append(m / (1e-7 + m.max()))
    return np.float32(out)


def test_the_twin_is_the_same_model(twins, x):
    model, twin, _ = twins
    logits = twin(torch.from_numpy(x.transpose(0, 3, 1, 2))).detach().numpy()
    np.testing.assert_allclose(keras.ops.convert_to_numpy(keras.ops.softmax(logits)), model(x).numpy(), atol=1e-5)


PEER = {  # camwidget's name -> pytorch-grad-cam's class
    "gradcam": "GradCAM",
    "hirescam": "HiResCAM",
    "xgradcam": "XGradCAM",
    "layercam": "LayerCAM",
    "gradcam-elementwise": "GradCAMElementWise",
    "fem": "FEM",
}


@pytest.mark.parametrize("method", list(PEER))
@pytest.mark.parametrize("layer", ["conv_a", "conv_b", "conv_c"])
def test_each_method_equals_pytorch_grad_cams(pgc, twins, x, method, layer):
    model, twin, relus = twins
    cam = getattr(pgc.cams, PEER[method])(model=twin, target_layers=[relus[layer]])
    theirs = cam(input_tensor=torch.from_numpy(x.transpose(0, 3, 1, 2)), targets=[pgc.target(c) for c in CLASSES])
    ours = cw.compute_cam(model, x, layer=layer, method=method, class_index=CLASSES, normalize=False)
    assert theirs.max() > 0
    np.testing.assert_allclose(as_pgc_scales_it(ours), theirs, atol=TOL)


@pytest.mark.parametrize("layer", ["conv_a", "conv_b", "conv_c"])
def test_grad_cam_plus_plus_differs_from_pytorch_grad_cams_only_by_its_epsilon(pgc, twins, x, layer):
    """pytorch-grad-cam adds 1e-6 to every alpha's denominator 2 G^2 + sum(A) G^3; the paper adds nothing, and
    camwidget follows the paper (tests/test_methods.py checks it against the paper's formula). Where G^2 is near
    1e-6 that moves a map by a few thousandths, never more."""
    model, twin, relus = twins
    cam = pgc.cams.GradCAMPlusPlus(model=twin, target_layers=[relus[layer]])
    theirs = cam(input_tensor=torch.from_numpy(x.transpose(0, 3, 1, 2)), targets=[pgc.target(c) for c in CLASSES])
    ours = cw.compute_cam(model, x, layer=layer, method="gradcam++", class_index=CLASSES, normalize=False)
    np.testing.assert_allclose(as_pgc_scales_it(ours), theirs, atol=0.01)


def activations_and_gradients(pgc, twin, relu, x):
    """The twin's A and dy_c/dA at a layer, as pytorch-grad-cam captures them (NCHW -> NHWC)."""
    from pytorch_grad_cam.activations_and_gradients import ActivationsAndGradients

    capture = ActivationsAndGradients(twin, [relu], None)
    try:
        outputs = capture(torch.from_numpy(x.transpose(0, 3, 1, 2)))
        sum(outputs[n, c] for n, c in enumerate(CLASSES)).backward()
        return capture.activations[0].numpy(), capture.gradients[0].numpy()
    finally:
        capture.release()


@pytest.mark.parametrize("layer", ["conv_b", "conv_c"])
def test_the_principal_component_methods_equal_pytorch_grad_cams_up_to_the_sign(pgc, twins, x, layer):
    model, twin, relus = twins
    a, g = activations_and_gradients(pgc, twin, relus[layer], x)
    expected = {
        "eigencam": pgc.svd.get_2d_projection(a),
        "eigen-gradcam": pgc.svd.get_2d_projection(g * a),
        "kpca-cam": pgc.svd.get_2d_projection_kernel(a, "sigmoid", None),
    }
    for method, theirs in expected.items():
        ours = cw.compute_cam(model, x, layer=layer, method=method, class_index=CLASSES, normalize=False)
        for mine, peer in zip(ours, theirs):
            scale = np.abs(peer).max()
            assert scale > 0
            sign = 1.0 if np.abs(mine - peer).max() < np.abs(mine + peer).max() else -1.0
            np.testing.assert_allclose(mine, sign * peer, atol=TOL * scale, err_msg=method)


@pytest.mark.parametrize("layer", ["conv_a", "conv_b", "conv_c"])
def test_ablation_cam_equals_pytorch_grad_cams(pgc, twins, x, layer):
    """Both set an ablated channel to 0 after a ReLU (pytorch-grad-cam uses min(A) - 1e7 only where A has negative
    values) and weigh it by the logit lost, y_c - y_c^k; pytorch-grad-cam divides by y_c as the paper does,
    camwidget by |y_c| (see its docstring), so where y_c < 0 the paper's map is camwidget's raw map negated."""
    model, twin, relus = twins
    cam = pgc.cams.AblationCAM(model=twin, target_layers=[relus[layer]], batch_size=8)
    tensor = torch.from_numpy(x.transpose(0, 3, 1, 2))
    theirs = cam(input_tensor=tensor, targets=[pgc.target(c) for c in CLASSES])
    ours = cw.compute_cam(model, x, layer=layer, method="ablation-cam", class_index=CLASSES, normalize=False)
    logits = twin(tensor).detach().numpy()[np.arange(len(x)), CLASSES]
    assert theirs.max() > 0
    np.testing.assert_allclose(as_pgc_scales_it(ours * np.sign(logits)[:, None, None]), theirs, atol=TOL)


@pytest.mark.parametrize("base", ["gradcam", "layercam"])
@pytest.mark.parametrize("layer", ["conv_b", "conv_c"])
def test_finer_cam_equals_pytorch_grad_cams_finer_cam_given_the_papers_score(pgc, twins, x, base, layer):
    """pytorch-grad-cam's FinerCAM, handed the paper's score y_c - gamma * mean_j y_j over the same references as
    targets, gives camwidget's map. (Its own default target weighs the references by their softmax
    probabilities instead of 1/T, a departure from the paper; camwidget's reading is checked against the paper's
    formula in tests/test_methods_added.py.)"""
    model, twin, relus = twins
    refs = [[1, 2], [0, 1], [3, 0]]
    gamma = 0.6

    def paper_score(c, r):
        return lambda output: output[..., c] - gamma * sum(output[..., j] for j in r) / len(r)

    cam = pgc.cams.FinerCAM(twin, [relus[layer]], base_method=getattr(pgc.cams, PEER[base]))
    theirs = cam(torch.from_numpy(x.transpose(0, 3, 1, 2)), targets=[paper_score(c, r) for c, r in zip(CLASSES, refs)])
    ours = np.concatenate(
        [
            cw.compute_cam(
                model,
                x[n : n + 1],
                layer=layer,
                class_index=c,
                method="finer-cam",
                method_options={"base": base, "references": r},
                normalize=False,
            )
            for n, (c, r) in enumerate(zip(CLASSES, refs))
        ]
    )
    assert theirs.max() > 0
    np.testing.assert_allclose(as_pgc_scales_it(ours), theirs, atol=TOL)


@pytest.mark.parametrize("kernel, gamma", [("rbf", 0.02), ("poly", None), ("cosine", None)])
def test_kpca_cam_kernels_equal_pytorch_grad_cams_up_to_the_sign(pgc, twins, x, kernel, gamma):
    model, twin, relus = twins
    a, _ = activations_and_gradients(pgc, twin, relus["conv_b"], x)
    theirs = pgc.svd.get_2d_projection_kernel(a, kernel, gamma)
    options = {"kernel": kernel, "gamma": gamma}
    ours = cw.compute_cam(model, x, layer="conv_b", method="kpca-cam", method_options=options, normalize=False)
    for mine, peer in zip(ours, theirs):
        scale = np.abs(peer).max()
        assert scale > 0
        sign = 1.0 if np.abs(mine - peer).max() < np.abs(mine + peer).max() else -1.0
        np.testing.assert_allclose(mine, sign * peer, atol=TOL * scale)


# pytorch-grad-cam 1.5.7's ShapleyCAM keeps the graph (detach=False), and releasing its hooks then fails in its
# __del__ ("Can't detach views in-place"): a peer's clean-up error, not a result
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
@pytest.mark.parametrize("layer", ["conv_a", "conv_b", "conv_c"])
def test_shapley_cam_with_the_rest_score_equals_pytorch_grad_cams(pgc, twins, x, layer):
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputReST

    model, twin, relus = twins
    tensor, targets = torch.from_numpy(x.transpose(0, 3, 1, 2)), [ClassifierOutputReST(c) for c in CLASSES]
    theirs = pgc.cams.ShapleyCAM(model=twin, target_layers=[relus[layer]])(input_tensor=tensor, targets=targets)
    ours = cw.compute_cam(
        model, x, layer=layer, method="shapley-cam", score="rest", class_index=CLASSES, normalize=False
    )
    assert theirs.max() > 0
    np.testing.assert_allclose(as_pgc_scales_it(ours), theirs, atol=TOL)


def test_fullgrad_equals_pytorch_grad_cams(pgc, twins, x):
    """pytorch-grad-cam hooks the twin's Conv2d outputs (before its separate ReLUs); camwidget reads the Keras
    convolutions' fused ReLU outputs and takes dy/dz = dy/da where a > 0. Both leave the Dense bias out."""
    model, twin, _ = twins
    theirs = pgc.cams.FullGrad(model=twin, target_layers=[])(
        input_tensor=torch.from_numpy(x.transpose(0, 3, 1, 2)), targets=[pgc.target(c) for c in CLASSES]
    )
    ours = cw.compute_cam(model, x, method="fullgrad", class_index=CLASSES, normalize=False)
    assert theirs.max() > 0
    np.testing.assert_allclose(as_pgc_scales_it(ours), theirs, atol=TOL)


# -- the noisy methods against torch-cam 0.5, the noise fixed to the same values on both sides ------------------------


@pytest.fixture(scope="module")
def torchcam():
    """torch-cam's methods (SS-CAM, IS-CAM and Smooth Grad-CAM++ are its, not pytorch-grad-cam's)."""
    if importlib.util.find_spec("torchcam") is None:
        pytest.fail("torch-cam is not installed: run sh tests/install_peers.sh")
    import torchcam.methods

    return torchcam.methods


class SameNoise:
    """Stands in for torch-cam's noise distribution (its ``_distrib``): each draw returns the next of the
    arrays camwidget drew, so both sides see the same noise."""

    def __init__(self, draws):
        self.draws = list(draws)

    def sample(self, size):
        draw = torch.from_numpy(np.ascontiguousarray(self.draws.pop(0), np.float32))
        assert tuple(draw.shape) == tuple(size)
        return draw


def recorded_weights(monkeypatch):
    """camwidget's Score-CAM-family channel weights w (per image, (K,)) and the layer's A, as its one batched
    path (perturbation.channel_weighted) computes them."""
    from camwidget.methods import perturbation

    seen = {"weights": []}
    inner = perturbation.channel_weighted

    def recording(inputs, method, weigh):
        def recorded(image, masks, score):
            w = np.asarray(weigh(image, masks, score), np.float64)
            seen["weights"].append(w)
            return w

        seen["activations"] = inputs.capture.activations
        return inner(inputs, method, recorded)

    monkeypatch.setattr(perturbation, "channel_weighted", recording)
    return seen


def torchcam_map(extractor, twin, x):
    """torch-cam's normalised maps (N, H, W) and its channel weights (N, K) for CLASSES."""
    got = {}
    inner = extractor._get_score_weights

    def keep(*args, **kw):
        got["weights"] = inner(*args, **kw)[0].numpy()
        return [torch.from_numpy(got["weights"])]

    extractor._get_score_weights = keep
    with torch.no_grad():
        twin(torch.from_numpy(x.transpose(0, 3, 1, 2)))
    return extractor(class_idx=CLASSES)[0].numpy(), got["weights"]


def as_torchcam_weighs(weights, activations):
    """camwidget's weights w put through torch-cam's softmax over the channels, its map ReLU(sum_k w_k A_k) and
    its min-max (torch-cam's _normalize)."""
    w = np.exp(weights - weights.max(axis=1, keepdims=True))
    w = w / w.sum(axis=1, keepdims=True)
    cam = np.maximum((w[:, None, None, :] * activations.astype(np.float64)).sum(-1), 0)
    cam = cam - cam.min(axis=(1, 2), keepdims=True)
    return cam / (cam.max(axis=(1, 2), keepdims=True) + 1e-8)


def probability_twin(twin):
    """The twin with a softmax on top: torch-cam's class score Y_c is then camwidget's class probability p_c."""
    return torch.nn.Sequential(twin, torch.nn.Softmax(dim=1)).eval()


def assert_same_channel_scores(ours, theirs):
    """torch-cam's weights are softmax_k(s_k - Y_c(X)) of the smoothed scores s_k; the baseline cancels in the
    softmax, so log of them equals camwidget's weights up to one constant per image."""
    log_theirs = np.log(theirs.astype(np.float64))
    centred = log_theirs - log_theirs.mean(axis=1, keepdims=True)
    mine = ours - ours.mean(axis=1, keepdims=True)
    assert np.abs(mine).max() > 1e-3  # the channels' scores differ: the check can fail
    np.testing.assert_allclose(mine, centred, atol=1e-5)


@pytest.mark.parametrize("samples, noise", [(1, 1e-9), (3, 0.5)])
def test_sscam_equals_torch_cams_given_the_same_noise_and_its_channel_softmax(
    torchcam, twins, x, monkeypatch, samples, noise
):
    """SS-CAM, w_k = (1/n) sum_m p_c(X * (M_k + d_m)), and torch-cam's SSCAM on the same noise d_m. Two readings
    differ: torch-cam weighs by a softmax over the channels of the smoothed logit gains Y_c(.) - Y_c(X), camwidget
    (and its Score-CAM, as the Score-CAM authors' code) by the smoothed class probability. torch-cam is handed the
    twin with a softmax on top, so its Y_c is p_c, and camwidget's weights are put through the channel softmax:
    then the two equal, weights and maps. At conv_a (the input's resolution) the masks are the same on both
    sides; at a smaller layer torch-cam scales each channel to [0, 1] before upsampling it, camwidget (and the
    paper's Score-CAM) after."""
    model, twin, relus = twins
    seen = recorded_weights(monkeypatch)
    options = {"samples": samples, "noise": noise}
    ours = cw.compute_cam(
        model, x, layer="conv_a", method="sscam", method_options=options, class_index=CLASSES, normalize=False
    )
    rng = np.random.default_rng(0)  # camwidget's draws, image by image, sample by sample: SS-CAM's SEED
    k = seen["activations"].shape[-1]
    draws = np.array([[rng.normal(0.0, noise, (k, SIZE, SIZE, 1)) for _ in range(samples)] for _ in x])
    scoring = probability_twin(twin)
    extractor = torchcam.SSCAM(scoring, relus["conv_a"], num_samples=samples, std=noise)
    extractor._distrib = SameNoise(draws[..., 0].transpose(1, 0, 2, 3, 4))  # (samples, N, K, H, W)
    theirs, their_weights = torchcam_map(extractor, scoring, x)
    extractor.remove_hooks()
    weights = np.array(seen["weights"])
    assert_same_channel_scores(weights, their_weights)
    np.testing.assert_allclose(as_torchcam_weighs(weights, seen["activations"]), theirs, atol=TOL)
    assert_weighs_its_map(ours, weights, seen["activations"])


def assert_weighs_its_map(ours, weights, activations):
    """The weights recorded are the ones camwidget's raw map sum_k w_k A_k was made with."""
    expected = (weights[:, None, None, :] * activations.astype(np.float64)).sum(-1)
    np.testing.assert_allclose(ours, expected, atol=1e-5 * np.abs(expected).max())


def integrated_scores(model, x, activations, coefficients):
    """(N, K): (1/n) sum_i p_c(X * c_i M_k) over the coefficients c_i, M_k channel k of A (at the input's
    resolution) scaled to [0, 1], p_c from the Keras model: written out here, for either reading of IS-CAM."""
    out = []
    for image, a, c in zip(x, activations, CLASSES):
        low, high = a.min(axis=(0, 1)), a.max(axis=(0, 1))
        masks = ((a - low) / (high - low + 1e-7)).transpose(2, 0, 1)[..., None]  # (K, H, W, 1)
        copies = np.concatenate([image[None] * np.float32(t) * masks for t in coefficients]).astype("float32")
        p = keras.ops.convert_to_numpy(model(copies))[:, c].astype(np.float64)
        out.append(p.reshape(len(coefficients), -1).mean(axis=0))
    return np.array(out)


@pytest.mark.parametrize("steps", [1, 3])
def test_iscam_equals_torch_cams_where_their_steps_agree(torchcam, twins, x, monkeypatch, steps):
    """IS-CAM: camwidget integrates Score-CAM's score along the straight path from a black input,
    w_k = (1/n) sum_{i=1..n} p_c(X * (i/n) M_k); torch-cam's ISCAM scales its i-th input by the running sum
    c_i = sum_{j<=i} j/n (up to (n+1)/2, past the image itself), and weighs by its channel softmax of logit
    gains, as its SS-CAM. Handed the twin with a softmax on top (so its Y_c is p_c): with one step the coefficients
    are both 1 and the two equal, weights and maps; with more, torch-cam's weights equal its running-sum reading
    written out here, and camwidget's its own i/n reading (tests/test_methods_added.py checks the same)."""
    model, twin, relus = twins
    seen = recorded_weights(monkeypatch)
    ours = cw.compute_cam(
        model, x, layer="conv_a", method="iscam", method_options={"steps": steps}, class_index=CLASSES, normalize=False
    )
    scoring = probability_twin(twin)
    extractor = torchcam.ISCAM(scoring, relus["conv_a"], num_samples=steps)
    theirs, their_weights = torchcam_map(extractor, scoring, x)
    extractor.remove_hooks()
    weights, a = np.array(seen["weights"]), seen["activations"]
    assert_weighs_its_map(ours, weights, a)
    running = np.cumsum(np.arange(1, steps + 1) / steps)
    assert_same_channel_scores(integrated_scores(model, x, a, running), their_weights)
    np.testing.assert_allclose(weights, integrated_scores(model, x, a, np.arange(1, steps + 1) / steps), atol=1e-5)
    if steps == 1:
        assert_same_channel_scores(weights, their_weights)
        np.testing.assert_allclose(as_torchcam_weighs(weights, a), theirs, atol=TOL)


@pytest.mark.parametrize("layer", ["conv_b", "conv_c"])
def test_smooth_gradcam_pp_noisy_gradients_equal_torch_cams(torchcam, twins, x, monkeypatch, layer):
    """Smooth Grad-CAM++ on the same noisy copies in both (torch-cam draws an absolute std, camwidget one scaled
    to each image's range: torch-cam is handed camwidget's draws). torch-cam 0.5 reads the method differently
    from the paper in three places: alpha's denominator has sum_ab(D3 * A)_k where the paper has
    sum_ab A_k,ab * D3_k,ij; the weights take ReLU of the last copy's gradient where the paper takes the mean D1;
    and the map weighs the last noisy copy's activations where the paper weighs the clean image's. So: torch-cam's
    map equals its own reading written out from camwidget's noisy gradients (the copies, their gradients and
    activations agree), and camwidget's map equals the paper's reading from the same gradients."""
    from camwidget.methods import gradient

    model, twin, relus = twins
    samples, noise = 3, 0.2
    passes = []
    inner = gradient.capture_at_layer

    def recording(inputs, images, classes, copies=1):
        got = inner(inputs, images, classes, copies)
        passes.append((images, got.gradients))
        return got

    monkeypatch.setattr(gradient, "capture_at_layer", recording)
    options = {"samples": samples, "noise": noise}
    ours = cw.compute_cam(
        model, x, layer=layer, method="smooth-gradcam++", method_options=options, class_index=CLASSES, normalize=False
    )
    noisy = np.concatenate([p[0] for p in passes]).reshape(samples, *x.shape)
    g = np.concatenate([p[1] for p in passes]).astype(np.float64)
    g = g.reshape(samples, len(x), *g.shape[1:])

    extractor = torchcam.SmoothGradCAMpp(twin, relus[layer], num_samples=samples, std=noise)
    extractor._distrib = SameNoise((noisy - x[None]).transpose(0, 1, 4, 2, 3))  # (samples, N, C, H, W)
    twin(torch.from_numpy(x.transpose(0, 3, 1, 2)))
    theirs = extractor(class_idx=CLASSES)[0].numpy()
    extractor.remove_hooks()
    assert not extractor._distrib.draws  # every draw was camwidget's

    split = keras.Model(model.inputs, model.get_layer(layer).output)
    clean = keras.ops.convert_to_numpy(split(x)).astype(np.float64)
    last = keras.ops.convert_to_numpy(split(noisy[-1].astype("float32"))).astype(np.float64)
    d1, d2, d3 = g.mean(axis=0), (g**2).mean(axis=0), (g**3).mean(axis=0)

    alpha = d2 / (2 * d2 + (d3 * clean).sum(axis=(1, 2), keepdims=True) + 1e-8)  # torch-cam's reading
    w = (alpha * np.maximum(g[-1], 0)).sum(axis=(1, 2))
    cam = np.maximum((w[:, None, None, :] * last).sum(-1), 0)
    cam = cam - cam.min(axis=(1, 2), keepdims=True)
    assert theirs.max() > 0
    np.testing.assert_allclose(cam / (cam.max(axis=(1, 2), keepdims=True) + 1e-8), theirs, atol=TOL)

    denominator = 2 * d2 + clean.sum(axis=(1, 2), keepdims=True) * d3  # the paper's reading
    alpha = np.where(d2 != 0, d2 / np.where(denominator != 0, denominator, 1e-7), 0.0)
    w = (alpha * np.maximum(d1, 0)).sum(axis=(1, 2))
    paper = (w[:, None, None, :] * clean).sum(-1)
    np.testing.assert_allclose(ours, paper, atol=TOL * np.abs(paper).max())
