"""Each CAM method's cost in forward passes of the same model, from one run.

    python benchmarks/bench_methods.py [--rounds 7] [--full-scorecam]

VGG16 (random weights), layer block5_conv3 (512 channels), one 224x224 image. The table gives each method's
median time and its ratio to one compiled forward pass, with the passes its definition needs beside it (a
method's registered cost, cw.METHODS[name].cost). The perturbation methods run once each (they take seconds),
Score-CAM, SS-CAM and IS-CAM on 64 channels (max_channels=64, the explorer's bound), scaled to the same baseline.
Two rows are floors, not methods: the input's gradient alone (FullGrad's backward must reach the input) and
Grad-CAM on 8 copies of the image at once (Smooth Grad-CAM++'s noisy pass, beside its capture of the image).
"""

from __future__ import annotations

import argparse

import _timing  # noqa: F401  (quiets TensorFlow before it is imported)
import keras
import numpy as np
import tensorflow as tf
from _timing import medians, table

import camwidget as cw


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--full-scorecam", action="store_true", help="also Score-CAM on all 512 channels (~1 min)")
    args = parser.parse_args()
    keras.utils.set_random_seed(0)
    model = keras.applications.VGG16(weights=None)
    forward = tf.function(lambda x: model(x, training=False))
    x = np.random.default_rng(0).uniform(-120, 130, (1, 224, 224, 3)).astype("float32")

    def run(**kw):
        return lambda: cw.compute_cam(model, x, layer="block5_conv3", class_index=1, **kw)

    fast = {"compiled forward pass (baseline)": lambda: forward(x).numpy()}
    slow_methods = ("scorecam", "sscam", "iscam", "ablation-cam")
    for name in cw.METHODS:
        if name not in slow_methods and name != "cam":  # VGG16 has no GAP head: CAM does not apply
            fast[name] = run(method=name)
    fast["gradcam + eigen_smooth"] = run(eigen_smooth=True)
    fast["gradcam + aug_smooth (6 passes)"] = run(aug_smooth=True)
    fast["shapley-cam, score=rest"] = run(method="shapley-cam", score="rest")
    # what two methods cannot go below, by their definitions: FullGrad's backward reaches the input (a compiled
    # tape over the whole model, nothing else); Smooth Grad-CAM++ captures the image, then its 8 noisy copies
    xt = tf.constant(x)

    @tf.function
    def input_gradient(t):
        with tf.GradientTape() as tape:
            tape.watch(t)
            y = model(t, training=False)[:, 1]
        return tape.gradient(y, t)

    fast["input gradient alone (FullGrad's floor)"] = lambda: input_gradient(xt).numpy()
    copies = np.repeat(x, 8, axis=0)
    fast["gradcam on 8 copies (the noisy pass)"] = lambda: cw.compute_cam(
        model, copies, layer="block5_conv3", class_index=1
    )
    results = medians(fast, args.rounds)
    slow = {
        "compiled forward pass (baseline)": fast["compiled forward pass (baseline)"],
        "scorecam, max_channels=64": run(method="scorecam", max_channels=64),
        "sscam, max_channels=64": run(method="sscam", max_channels=64),
        "iscam, max_channels=64": run(method="iscam", max_channels=64),
        "ablation-cam, all 512 channels": run(method="ablation-cam"),
    }
    if args.full_scorecam:
        slow["scorecam, all 512 channels"] = run(method="scorecam")
    # warmed up on a few channels: the same compiled passes (fixed batches), not their minutes over again
    for warm in ("scorecam", "ablation-cam"):
        run(method=warm, max_channels=16)()
    slow_results = medians(slow, rounds=1, warmup=0)
    base = results["compiled forward pass (baseline)"]
    results.update(
        {
            k: v * base / slow_results["compiled forward pass (baseline)"]
            for k, v in slow_results.items()
            if k != "compiled forward pass (baseline)"
        }
    )
    passes = {
        name: cw.METHODS[name.split(",")[0]].cost
        for name in results
        if name.split(",")[0] in cw.METHODS  # a method alone (not a smoothing of it): its registered cost
    }
    table(
        f"VGG16 block5_conv3, 1 image, medians of {args.rounds} (perturbation methods: 1 run, scaled to this baseline)",
        results,
        "compiled forward pass (baseline)",
        passes,
    )


if __name__ == "__main__":
    main()
