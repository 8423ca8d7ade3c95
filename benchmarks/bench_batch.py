"""Throughput of explain_many over picture files: VGG16 (random weights), 256 JPEGs of 500x375 on disk.

    python benchmarks/bench_batch.py [--images 256] [--batch-size 16] [--rounds 1]

Against, in the same run and over the same files with the same input pipeline (read, resize, preprocess in a
thread pool while the model runs):
  - the floor: one compiled forward pass per batch, nothing else;
  - tf-keras-vis's Gradcam driven over the same batches (expand_cam=False: maps at the layer's resolution).
Prints images per second and the ratios.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

import _timing  # noqa: F401  (quiets TensorFlow before it is imported)
import cv2
import keras
import numpy as np
import tensorflow as tf

from camwidget.inputs import preprocess as preprocessing
from camwidget.inputs.images import read_picture
from camwidget.pipeline.batch import explain_many, picture_sources


def write_pictures(folder: str, count: int) -> None:
    rng = np.random.default_rng(0)
    base = rng.integers(0, 256, (375, 500, 3), dtype=np.uint8)
    for i in range(count):
        picture = np.roll(base, 7 * i, axis=1)  # different pictures, same cost to decode
        cv2.imwrite(os.path.join(folder, f"{i:04d}.jpg"), picture)


def batches(model: keras.Model, folder: str, batch_size: int):
    """The same input pipeline as explain_many: read and preprocess in two threads, in order, ahead."""
    steps = preprocessing.resolve(model, None)

    def load(source):
        pixels = read_picture(source[1]).pixels
        return preprocessing.model_input(pixels, (224, 224, 3), 1024, steps.fn)[0]

    with ThreadPoolExecutor(max_workers=2) as pool:
        pending = []
        for x in pool.map(load, picture_sources(folder)):
            pending.append(x)
            if len(pending) == batch_size:
                yield np.concatenate(pending)
                pending = []
        if pending:
            yield np.concatenate(pending)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()
    keras.utils.set_random_seed(0)
    model = keras.applications.VGG16(weights=None)
    forward = tf.function(lambda x: model(x, training=False)).get_concrete_function(
        tf.TensorSpec((None, 224, 224, 3), tf.float32)
    )
    with tempfile.TemporaryDirectory() as folder:
        write_pictures(folder, args.images)

        def floor() -> None:
            for x in batches(model, folder, args.batch_size):
                forward(tf.constant(x)).numpy()

        def ours() -> None:
            for _ in explain_many(model, folder, batch_size=args.batch_size, layer="block5_conv3"):
                pass

        candidates = {"compiled forward pass (floor)": floor, "camwidget explain_many": ours}
        try:
            from tf_keras_vis.gradcam import Gradcam
            from tf_keras_vis.utils.model_modifiers import ReplaceToLinear
            from tf_keras_vis.utils.scores import CategoricalScore

            tool = Gradcam(model, model_modifier=ReplaceToLinear(), clone=True)

            def peer() -> None:
                for x in batches(model, folder, args.batch_size):
                    classes = forward(tf.constant(x)).numpy().argmax(axis=1)
                    tool(CategoricalScore(list(classes)), x, penultimate_layer="block5_conv3", expand_cam=False)

            candidates["tf-keras-vis Gradcam"] = peer
        except ImportError as exc:
            print(f"tf-keras-vis left out: {exc}")
        # warm-up on a few batches: traces, first calls
        for x in list(batches(model, folder, args.batch_size))[:1]:
            forward(tf.constant(x))
        next(iter(explain_many(model, folder, batch_size=args.batch_size, layer="block5_conv3")))
        times = {name: [] for name in candidates}
        for _ in range(args.rounds):
            for name, fn in candidates.items():
                start = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - start)
    rate = {name: args.images / float(np.median(t)) for name, t in times.items()}
    base, mine = rate["compiled forward pass (floor)"], rate["camwidget explain_many"]
    print(f"\nVGG16, {args.images} JPEGs of 500x375, batch {args.batch_size}, median of {args.rounds} round(s)")
    print(f"  {'':32s} {'images/s':>9s} {'x floor':>8s} {'camwidget is':>13s}")
    for name, r in rate.items():
        print(f"  {name:32s} {r:9.2f} {r / base:8.2f} {mine / r:12.2f}x")


if __name__ == "__main__":
    main()
