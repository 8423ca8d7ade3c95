"""What the audit costs over explain_many: 2,000 pictures of 96x96 (PNG files) through a small CNN trained here.

    python benchmarks/bench_audit.py [--images 2000] [--concepts 4] [--rounds 3]

Each measurement runs in a fresh process (so that its peak memory is its own): the model is loaded and warmed
up on 64 pictures by the same calls (the audit's report included, so that the libraries it loads are loaded), then
  - explain_many over the folder (every result consumed, nothing kept), and
  - the whole audit: cw.audit with labels (maps, clusters, concepts) and its report written (HTML, CSVs, JSON).
  - the audit without concepts and report (maps, clusters, flags), to show where the time goes.
The three run in turn, --rounds times (a fresh process each), so that a busy machine's drifts hit all alike.
Prints the median seconds of each, their ratio to explain_many (the issue's bar for the whole audit: at most 1.5x), and
each one's peak resident memory growth over its start (the bar: the audit's at most 200 MB above
explain_many's).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
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


class PeakMemory:
    """The process's largest resident memory while the block runs, over its resident memory at the start
    (sampled every 5 ms by a thread; ru_maxrss cannot be reset after the warm-up)."""

    def __enter__(self) -> PeakMemory:
        import threading

        import psutil

        self._process = psutil.Process()
        self.start = self.peak = self._process.memory_info().rss
        self._stop = threading.Event()

        def sample() -> None:
            while not self._stop.wait(0.005):
                self.peak = max(self.peak, self._process.memory_info().rss)

        self._thread = threading.Thread(target=sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._process.memory_info().rss)

    @property
    def growth_mb(self) -> float:
        return (self.peak - self.start) / 2**20


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
    concepts = concepts if mode == "audit" else 0
    if mode == "explain":  # each warmed up by its own calls (the compiled passes traced), on 64 pictures
        for _ in cw.explain_many(model, warm, layer="last_conv", batch_size=32, progress_bar=False):
            pass
    else:  # the report too (for the whole audit), so that what it imports (t-SNE, matplotlib) is loaded before
        small = cw.audit(
            model, warm, labels=labels, layer="last_conv", concepts=concepts, batch_size=32, progress_bar=False
        )
        if mode == "audit":
            write(small, os.path.join(folder, "warm-up"), [pics])
    with PeakMemory() as memory:
        start = time.perf_counter()
        if mode == "explain":
            count = sum(1 for _ in cw.explain_many(model, pics, layer="last_conv", batch_size=32, progress_bar=False))
        else:
            found = cw.audit(
                model, pics, labels=labels, layer="last_conv", concepts=concepts, batch_size=32, progress_bar=False
            )
            count = len(found.names)
            if mode == "audit":
                write(found, os.path.join(folder, "out"), [pics])
        seconds = time.perf_counter() - start
    return {"seconds": seconds, "peak_growth_mb": memory.growth_mb, "pictures": count}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--concepts", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3, help="measurements of each, medians reported")
    parser.add_argument("--measure", choices=["explain", "maps-and-clusters", "audit"], help=argparse.SUPPRESS)
    parser.add_argument("--folder", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(args.folder, args.measure, args.concepts)))
        return
    with tempfile.TemporaryDirectory() as folder:
        os.makedirs(os.path.join(folder, "pics"))
        make_data(folder, args.images)
        train(folder)
        runs: dict[str, list[dict]] = {mode: [] for mode in ("explain", "maps-and-clusters", "audit")}
        for _ in range(max(1, args.rounds)):
            for mode, found in runs.items():
                command = [sys.executable, __file__, "--measure", mode, "--folder", folder]
                command += ["--concepts", str(args.concepts)]
                out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
                found.append(json.loads(out.strip().splitlines()[-1]))
    results = {
        mode: {key: statistics.median(r[key] for r in found) for key in ("seconds", "peak_growth_mb")}
        for mode, found in runs.items()
    }
    e, a = results["explain"], results["audit"]
    print(
        f"{args.images} pictures of {SIZE}x{SIZE}, a small CNN trained here, Grad-CAM at last_conv, batch 32; "
        f"medians of {max(1, args.rounds)} rounds"
    )
    names = {
        "explain": "explain_many",
        "maps-and-clusters": "audit: maps, clusters, flags",
        "audit": f"audit + {args.concepts} concepts + report",
    }
    for mode, label in names.items():
        r = results[mode]
        print(f"  {label:34s} {r['seconds']:7.1f} s  {r['seconds'] / e['seconds']:6.2f}x   peak memory growth "
              f"{r['peak_growth_mb']:7.1f} MB")  # fmt: skip
    for mode, label in names.items():
        seconds = ", ".join(f"{run['seconds']:.2f}" for run in runs[mode])
        print(f"  {label}, each round: {seconds} s")
    print(f"  time ratio, whole audit / explain_many: {a['seconds'] / e['seconds']:.2f} (bar: at most 1.5)")
    print(
        f"  memory, whole audit - explain_many: {a['peak_growth_mb'] - e['peak_growth_mb']:.1f} MB (bar: at most 200)"
    )


if __name__ == "__main__":
    main()
