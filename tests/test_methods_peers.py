"""Each CAM method against pytorch-grad-cam's own implementation, on the same weights: a small torch twin of a
Keras CNN with the Keras weights copied in (kernels transposed to torch's layout, the Flatten order mapped), both
maps put through pytorch-grad-cam's own scaling (ReLU, min-max, resize to the input), equal within 1e-4.

Where the definitions differ, the test says how and checks what can be compared:
- Grad-CAM++: pytorch-grad-cam adds 1e-6 to alpha's denominator, the paper (and camwidget) does not.
- Eigen-CAM, Eigen-Grad-CAM, KPCA-CAM: a principal component's sign is arbitrary. pytorch-grad-cam keeps the
  sign its SVD (or scikit-learn) returns; camwidget signs it to agree with the summed activations. The raw
  projections are compared up to that sign.
- Score-CAM: pytorch-grad-cam weighs channel k by a softmax over the channels of the masked inputs' class
  logits; the authors' code, tf-keras-vis and camwidget by the masked input's class probability (a softmax over
  the classes). camwidget's is checked against its formula and tf-keras-vis in tests/test_methods.py.
- Random-CAM: a random draw; both are w_k A_k with w ~ U(-1, 1) (checked from its formula in test_methods).
- SS-CAM, IS-CAM (torch-cam 0.5): torch-cam weighs by a softmax over channels of the logit gains, camwidget by the
  class probability as its Score-CAM; SS-CAM draws noise. Both are checked against their formulas in
  tests/test_methods_added.py instead.
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
