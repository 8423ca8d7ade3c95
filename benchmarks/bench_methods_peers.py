"""camwidget against pytorch-grad-cam (and torch-cam for Smooth Grad-CAM++), side by side on the same machine and the
same model (issue 28, section 3).

VGG16 with random weights (offline) at 224x224, batch 1, layer block5_conv3; pytorch-grad-cam 1.5.7 runs on a
torch twin of the same Keras model with the weights copied in (kernels transposed; the feature map put back in
Keras's (h, w, c) order before Flatten, so the Dense weights are used as they are). Both on the CPU with the same
number of threads; each method's median over interleaved rounds, after warm-up, against each library's own
forward pass (a compiled Keras forward; the twin's forward under torch.no_grad()).

The perturbation methods (Score-CAM, Ablation-CAM) are left out: each runs 512 masked passes of VGG16 here in
both libraries, minutes a round on 2 cores; their cost is their pass count in both (bench_methods.py).

    python benchmarks/bench_methods_peers.py [--rounds 5]
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import types

import numpy as np  # noqa: E402  (after _timing, which quiets TensorFlow's start-up)
from _timing import medians

METHODS = {  # camwidget's name -> pytorch-grad-cam's class
    "gradcam": "GradCAM",
    "hirescam": "HiResCAM",
    "xgradcam": "XGradCAM",
    "layercam": "LayerCAM",
    "gradcam-elementwise": "GradCAMElementWise",
    "gradcam++": "GradCAMPlusPlus",
    "eigen-gradcam": "EigenGradCAM",
    "shapley-cam": "ShapleyCAM",
    "fullgrad": "FullGrad",
    "fem": "FEM",
    "kpca-cam": "KPCA_CAM",
    "eigencam": "EigenCAM",
}
TORCH_CAM = {"smooth-gradcam++": "SmoothGradCAMpp"}  # torch-cam's, on the same twin: 8 noisy copies in both


def pytorch_grad_cam() -> types.ModuleType:
    """pytorch_grad_cam, with a stand-in for torchvision where it is missing (it imports torchvision's
    transforms only for image helpers never called here; tests/install_peers.sh says why)."""
    if importlib.util.find_spec("torchvision") is None:
        for name in ("torchvision", "torchvision.transforms", "torchvision.transforms.functional"):
            module = types.ModuleType(name)
            module.__path__ = []  # a package, so its submodules import
            module.__getattr__ = lambda attribute: object  # any name asked for: never called here
            sys.modules[name] = module
    import pytorch_grad_cam as pgc

    return pgc


def torch_twin(model):
    """The Keras VGG16 as a torch module with the same weights, and its block5_conv3 ReLU (the target layer)."""
    import keras
    import torch

    class KerasFlatten(torch.nn.Module):
        def forward(self, x):  # (N, C, H, W) -> Keras's (N, H * W * C)
            return x.permute(0, 2, 3, 1).flatten(1)

    parts, target = [], None
    for layer in model.layers:
        if isinstance(layer, keras.layers.Conv2D):
            kernel, bias = layer.get_weights()
            conv = torch.nn.Conv2d(kernel.shape[2], kernel.shape[3], kernel.shape[0], padding="same")
            conv.weight.data = torch.from_numpy(np.ascontiguousarray(kernel.transpose(3, 2, 0, 1)))
            conv.bias.data = torch.from_numpy(bias)
            relu = torch.nn.ReLU()
            parts += [conv, relu]
            target = relu if layer.name == "block5_conv3" else target
        elif isinstance(layer, keras.layers.MaxPooling2D):
            parts.append(torch.nn.MaxPool2d(2))
        elif isinstance(layer, keras.layers.Flatten):
            parts.append(KerasFlatten())
        elif isinstance(layer, keras.layers.Dense):
            kernel, bias = layer.get_weights()
            dense = torch.nn.Linear(kernel.shape[0], kernel.shape[1])
            dense.weight.data = torch.from_numpy(np.ascontiguousarray(kernel.T))
            dense.bias.data = torch.from_numpy(bias)
            parts.append(dense)
            if layer.activation.__name__ == "relu":
                parts.append(torch.nn.ReLU())  # the last Dense's softmax is left out: both explain the logits
    return torch.nn.Sequential(*parts).eval(), target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    import keras
    import tensorflow as tf
    import torch

    import camwidget as cw

    threads = tf.config.threading.get_intra_op_parallelism_threads() or len(__import__("os").sched_getaffinity(0))
    torch.set_num_threads(threads)
    pgc = pytorch_grad_cam()
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    keras.utils.set_random_seed(0)
    model = keras.applications.VGG16(weights=None)
    twin, relu = torch_twin(model)
    x = np.random.default_rng(0).uniform(-100, 100, (1, 224, 224, 3)).astype("float32")
    xt = torch.from_numpy(x.transpose(0, 3, 1, 2).copy())
    with torch.no_grad():
        logits = twin(xt).numpy()
    top = int(logits.argmax())
    probs = model(x).numpy()
    same = np.abs(keras.ops.convert_to_numpy(keras.ops.softmax(logits)) - probs).max()
    print(f"VGG16 224x224 batch 1, block5_conv3, {threads} threads; twin vs Keras probabilities: max diff {same:.1e}")

    forward = tf.function(lambda t: model(t, training=False))
    xtf = tf.constant(x)

    def torch_forward():
        with torch.no_grad():
            twin(xt)

    candidates = {"keras forward (compiled)": lambda: forward(xtf).numpy(), "torch forward": torch_forward}
    cams = {}
    for name, peer in METHODS.items():
        cams[name] = getattr(pgc, peer)(model=twin, target_layers=[relu])
        candidates[f"camwidget {name}"] = lambda name=name: cw.compute_cam(
            model, x, layer="block5_conv3", method=name, class_index=top
        )
        candidates[f"pytorch-grad-cam {name}"] = lambda name=name: cams[name](
            input_tensor=xt, targets=[ClassifierOutputTarget(top)]
        )
    if importlib.util.find_spec("torchcam") is not None:
        import torchcam.methods

        for name, peer in TORCH_CAM.items():
            candidates[f"camwidget {name}"] = lambda name=name: cw.compute_cam(
                model, x, layer="block5_conv3", method=name, class_index=top
            )

            def torch_cam(peer=peer):
                with getattr(torchcam.methods, peer)(twin, relu, num_samples=8) as extractor:  # hooks off after
                    twin(xt)
                    return extractor(class_idx=top)

            candidates[f"torch-cam {name}"] = torch_cam
    results = medians(candidates, args.rounds)
    keras_fwd, torch_fwd = results["keras forward (compiled)"], results["torch forward"]
    print(f"\nforward: Keras {keras_fwd * 1e3:.0f} ms, torch {torch_fwd * 1e3:.0f} ms (medians of {args.rounds})")
    print("\n| method | camwidget ms | x its forward | peer | peer ms | x its forward | camwidget / peer |")
    print("|---|---:|---:|---|---:|---:|---:|")
    peers = [(name, "pytorch-grad-cam") for name in METHODS] + [(name, "torch-cam") for name in TORCH_CAM]
    for name, library in peers:
        if f"{library} {name}" not in results:
            continue
        ours, theirs = results[f"camwidget {name}"], results[f"{library} {name}"]
        print(
            f"| {name} | {ours * 1e3:.0f} | {ours / keras_fwd:.2f} | {library} | {theirs * 1e3:.0f} | "
            f"{theirs / torch_fwd:.2f} | {ours / theirs:.2f} |"
        )


if __name__ == "__main__":
    main()
