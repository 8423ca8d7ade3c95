"""What the audit costs over explain_many: 2,000 pictures of 96x96 (PNG files) through a small CNN trained here.

    python benchmarks/bench_audit.py [--images 2000] [--concepts 4]

Each measurement runs in a fresh process (so that its peak memory is its own): the model is loaded and warmed
up on a few pictures, then
  - explain_many over the folder (every result consumed, nothing kept), and
  - the whole audit: cw.audit with labels (maps, clusters, concepts) and its report written (HTML, CSVs, JSON).
Prints the seconds of each, their ratio (the issue's bar: at most 1.5x), and each one's peak memory growth
over its process's state after the warm-up (the bar: the audit's at most 200 MB above explain_many's).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

import _timing  # noqa: F401  (quiets TensorFlow before it is imported)
import numpy as np

SIZE = 96


def make_data(folder: str, count: int) -> None:
    """Noise with a circle (class 0) or a cross (class 1), and a watermark on the crosses; labels.csv."""
    import cv2

    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:SIZE, :SIZE]
    rows = ["picture,label"]
    for i in range(count):
        picture = rng.integers(0, 115, (SIZE, SIZE, 3)).astype(np.uint8)
        label = int(rng.integers(0, 2))
        cy, cx = rng.integers(20, SIZE - 20, 2)
        if label == 0:
            picture[(yy - cy) ** 2 + (xx - cx) ** 2 <= 80] += 60
        else:
            picture[cy - 12 : cy + 12, cx - 3 : cx + 3] += 60
            picture[cy - 3 : cy + 3, cx - 12 : cx + 12] += 60
            picture[2:12, 2:12] = 255
        cv2.imwrite(os.path.join(folder, "pics", f"{i:05d}.png"), picture)
        rows.append(f"{i:05d}.png,{label}")
    with open(os.path.join(folder, "labels.csv"), "w") as f:
        f.write("\n".join(rows) + "\n")


def train(folder: str) -> None:
    import keras
    from keras import layers

    from camwidget.inputs.images import read_picture

    names = sorted(os.listdir(os.path.join(folder, "pics")))[:600]
    x = np.stack([read_picture(os.path.join(folder, "pics", n)).pixels for n in names]).astype("float32") / 255
    labels = dict(line.split(",") for line in open(os.path.join(folder, "labels.csv")).read().split()[1:])
    y = np.array([int(labels[n]) for n in names])
    keras.utils.set_random_seed(0)
    inp = keras.Input((SIZE, SIZE, 3))
    h = layers.Conv2D(16, 3, padding="same", activation="relu")(inp)
    h = layers.MaxPooling2D()(h)
    h = layers.Conv2D(32, 3, padding="same", activation="relu")(h)
    h = layers.MaxPooling2D()(h)
    h = layers.Conv2D(32, 3, padding="same", activation="relu", name="last_conv")(h)
    model = keras.Model(inp, layers.Dense(2, activation="softmax")(layers.GlobalAveragePooling2D()(h)))
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x, y, epochs=2, batch_size=32, verbose=0)
    model.save(os.path.join(folder, "model.keras"))


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KB on Linux


def measure(folder: str, mode: str, concepts: int) -> dict:
    """One measurement in this process (see the module's docstring)."""
    import keras

    import camwidget as cw
    from camwidget.audits.command import read_labels
    from camwidget.audits.report import write

    model = keras.models.load_model(os.path.join(folder, "model.keras"))
    pics = os.path.join(folder, "pics")
    warm = [os.path.join(pics, n) for n in sorted(os.listdir(pics))[:64]]
    labels = read_labels(os.path.join(folder, "labels.csv"))
    if mode == "explain":  # each warmed up by its own calls (the compiled passes traced), on 64 pictures
        for _ in cw.explain_many(model, warm, layer="last_conv", batch_size=32, progress_bar=False):
            pass
    else:
        cw.audit(model, warm, labels=labels, layer="last_conv", concepts=concepts, batch_size=32, progress_bar=False)
    base = peak_mb()
    start = time.perf_counter()
    if mode == "explain":
        count = sum(1 for _ in cw.explain_many(model, pics, layer="last_conv", batch_size=32, progress_bar=False))
    else:
        found = cw.audit(
            model, pics, labels=labels, layer="last_conv",
            concepts=concepts, batch_size=32, progress_bar=False,
        )  # fmt: skip
        write(found, os.path.join(folder, "out"), [pics])
        count = len(found.names)
    return {"seconds": time.perf_counter() - start, "peak_growth_mb": peak_mb() - base, "pictures": count}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--concepts", type=int, default=4)
    parser.add_argument("--measure", choices=["explain", "audit"], help=argparse.SUPPRESS)
    parser.add_argument("--folder", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(args.folder, args.measure, args.concepts)))
        return
    with tempfile.TemporaryDirectory() as folder:
        os.makedirs(os.path.join(folder, "pics"))
        make_data(folder, args.images)
        train(folder)
        results = {}
        for mode in ("explain", "audit"):
            command = [
                sys.executable,
                __file__,
                "--measure",
                mode,
                "--folder",
                folder,
                "--concepts",
                str(args.concepts),
            ]
            out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
            results[mode] = json.loads(out.strip().splitlines()[-1])
    e, a = results["explain"], results["audit"]
    print(f"{args.images} pictures of {SIZE}x{SIZE}, a small CNN trained here, Grad-CAM at last_conv, batch 32")
    print(f"  explain_many        {e['seconds']:7.1f} s   peak memory growth {e['peak_growth_mb']:7.1f} MB")
    print(f"  audit + report      {a['seconds']:7.1f} s   peak memory growth {a['peak_growth_mb']:7.1f} MB")
    print(f"  time ratio          {a['seconds'] / e['seconds']:7.2f}   (bar: at most 1.5)")
    print(f"  memory difference   {a['peak_growth_mb'] - e['peak_growth_mb']:7.1f} MB (bar: at most 200)")


if __name__ == "__main__":
    main()
