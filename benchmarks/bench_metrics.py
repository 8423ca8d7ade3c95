"""Deletion + insertion for 32 images at 224x224 with 100 steps: camwidget.metrics against xplique's Deletion and
Insertion and Quantus's PixelFlipping (its deletion), set up the same way (same maps, same baseline, same steps),
and against the floor: one compiled forward pass over as many images as the curves need (32 x 101 x 2).

    python benchmarks/bench_metrics.py [--model small|vgg16] [--images 32] [--rounds 3]

The peers are installed with `sh tests/install_peers.sh` (xplique and Quantus pin older TensorFlow and opencv,
so they go in without their own dependencies). A peer that does not import is reported and left out.
"""

from __future__ import annotations

import argparse
import time

import _timing  # noqa: F401  (quiets TensorFlow before it is imported)
import keras
import numpy as np
import tensorflow as tf

from camwidget import metrics

SIZE, STEPS = 224, 100


def small_cnn() -> keras.Model:
    """A small strided CNN at 224x224 (about 0.05 GFLOP), where what a metric costs beyond the model shows."""
    inp = keras.Input((SIZE, SIZE, 3))
    x = layers_stack(inp)
    return keras.Model(inp, keras.layers.Dense(10, activation="softmax")(keras.layers.GlobalAveragePooling2D()(x)))


def layers_stack(x):
    for filters in (16, 32, 64):
        x = keras.layers.Conv2D(filters, 3, strides=2, padding="same", activation="relu")(x)
    return x


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", choices=("small", "vgg16"), default="small")
    parser.add_argument("--images", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    keras.utils.set_random_seed(0)
    model = small_cnn() if args.model == "small" else keras.applications.VGG16(weights=None)
    rng = np.random.default_rng(0)
    x = rng.random((args.images, SIZE, SIZE, 3)).astype("float32")
    maps = rng.random((args.images, SIZE, SIZE)).astype("float32")  # no ties: every tool orders pixels alike
    classes = model(x).numpy().argmax(axis=1)
    n_classes = model.output_shape[-1]

    forward = tf.function(lambda t: model(t, training=False)).get_concrete_function(
        tf.TensorSpec((32, SIZE, SIZE, 3), tf.float32)
    )
    batch = tf.constant(x[:32] if len(x) >= 32 else np.resize(x, (32, SIZE, SIZE, 3)))
    passes = args.images * (STEPS + 1) * 2 // 32

    def floor() -> None:
        for _ in range(passes):
            forward(batch)

    candidates = {
        "forward passes (floor)": floor,
        "camwidget deletion + insertion": lambda: (
            metrics.deletion(model, x, maps, steps=STEPS, baseline=0.0, class_index=classes),
            metrics.insertion(model, x, maps, steps=STEPS, baseline=0.0, class_index=classes),
        ),
    }
    values: dict[str, float] = {}
    try:
        from xplique.metrics import Deletion, Insertion

        onehot = np.eye(n_classes)[classes]

        def xplique_run() -> None:
            values["xplique deletion"] = Deletion(
                model, x, onehot, baseline_mode=0.0, steps=STEPS, batch_size=32
            ).evaluate(maps)
            values["xplique insertion"] = Insertion(
                model, x, onehot, baseline_mode=0.0, steps=STEPS, batch_size=32
            ).evaluate(maps)

        candidates["xplique Deletion + Insertion"] = xplique_run
    except ImportError as exc:
        print(f"xplique left out: {exc}")
    try:
        import quantus

        if not hasattr(np, "trapz"):  # Quantus 0.6 calls np.trapz, which NumPy 2.4 removed (renamed trapezoid)
            np.trapz = np.trapezoid

        def quantus_run() -> None:
            metric = quantus.PixelFlipping(
                features_in_step=512,
                perturb_baseline=0.0,
                disable_warnings=True,  # 98 steps: it must divide 224²
                display_progressbar=False,
                return_auc_per_sample=True,
            )
            values["quantus pixel flipping"] = float(
                np.mean(
                    metric(
                        model=model,
                        x_batch=x,
                        y_batch=classes,
                        a_batch=maps[:, None],
                        channel_first=False,
                        batch_size=32,
                    )
                )
            )

        candidates["Quantus PixelFlipping (deletion only)"] = quantus_run
    except ImportError as exc:
        print(f"Quantus left out: {exc}")

    floor()  # warm-up; each candidate's first round (its traces) is the median's to discard
    times: dict[str, list[float]] = {name: [] for name in candidates}
    for _ in range(args.rounds):
        for name, fn in candidates.items():
            times[name].append(timed(fn))
    medians = {name: float(np.median(t)) for name, t in times.items()}
    ours = medians["camwidget deletion + insertion"]
    print(f"\n{args.model}, {args.images} images at {SIZE}x{SIZE}, {STEPS} steps, median of {args.rounds} rounds")
    print(f"  {'':40s} {'seconds':>8s} {'x floor':>8s} {'x camwidget':>12s}")
    for name, seconds in medians.items():
        print(f"  {name:40s} {seconds:8.2f} {seconds / medians['forward passes (floor)']:8.2f} {seconds / ours:12.2f}")
    d = metrics.deletion(model, x, maps, steps=STEPS, baseline=0.0, class_index=classes).area
    i = metrics.insertion(model, x, maps, steps=STEPS, baseline=0.0, class_index=classes).area
    print(f"\n  areas: camwidget deletion {d:.5f} insertion {i:.5f}")
    for name, value in values.items():
        print(f"         {name} {value:.5f}")


if __name__ == "__main__":
    main()
