"""Kernel-side cost of CAMExplorer's control changes, as ratios to one compiled forward pass of the model.

    python benchmarks/bench_widget.py [--rounds 20]

VGG16 (random weights), 224x224 images, layer block5_conv3. Each change is timed from setting the control's
value (as a browser message does) to the new PNG being in the Image widget's state. "model change check"
is what every view pays to make sure the model did not change since the last one.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

import _timing  # noqa: F401  (quiets TensorFlow before it is imported)
import keras
import numpy as np
import tensorflow as tf
from _timing import medians

import camwidget as cw


def timed(action, rounds, before=lambda: None):
    times = []
    for i in range(rounds):
        before()
        start = time.perf_counter()
        action(i)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    n = args.rounds
    keras.utils.set_random_seed(0)
    model = keras.applications.VGG16(weights=None)
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (224, 224, 3), dtype=np.uint8) for _ in range(2 * n + 1)]
    forward = tf.function(lambda x: model(x, training=False))
    x = rng.uniform(-120, 130, (1, 224, 224, 3)).astype("float32")
    fwd = medians({"forward": lambda: forward(x).numpy()}, rounds=n)["forward"]

    ex = cw.CAMExplorer(model, images, layer="block5_conv3")
    session = ex.session
    settle = session.wait_for_warm_ups  # a user looks at a view for a moment: background work finishes
    results = {"model change check (per view)": timed(lambda i: session.explainer.sync(), n)}
    start = time.perf_counter()
    settle()
    results["warm-up after the first view ever (traces once)"] = time.perf_counter() - start
    ex.layer = "block5_conv3"
    settle()
    alphas = np.linspace(0.05, 0.95, n)
    results.update(
        {
            "alpha change (re-blend)": timed(
                lambda i: setattr(ex.controls["alpha"], "value", float(alphas[i])), n, settle
            ),
            "colormap change": timed(
                lambda i: setattr(ex.controls["colormap"], "value", ["viridis", "jet"][i % 2]), n, settle
            ),
            "class change (layers after block5_conv3)": timed(
                lambda i: setattr(ex.controls["class"], "value", 10 + i), n, settle
            ),
        }
    )
    spatial = [v for _, v in ex.controls["layer"].options]
    warm, first, at_once, later, scrub = [], [], [], [], []
    for i in range(1, n + 1):
        ex.image_index = i  # a new image: one pass at the current layer, then the warm-up starts
        start = time.perf_counter()
        settle()
        warm.append(time.perf_counter() - start)
        target = spatial[i % (len(spatial) - 2)]  # some layer below the default one
        start = time.perf_counter()
        ex.controls["layer"].value = target  # first switch for this image, after the warm-up
        first.append(time.perf_counter() - start)
        for other in (spatial[(i * 7) % len(spatial)], "block5_conv3", spatial[(i * 3) % len(spatial)]):
            start = time.perf_counter()
            ex.controls["layer"].value = other  # later switches: every layer is ready
            later.append(time.perf_counter() - start)
        start = time.perf_counter()
        for layer in spatial:  # a scrub through all the spatial layers, as a slider would
            ex.controls["layer"].value = layer
        scrub.append((time.perf_counter() - start) / len(spatial))
        ex.layer = "block5_conv3"
        settle()
        ex.image_index = n + i  # another new image, and a switch at once: waits for its warm-up
        start = time.perf_counter()
        ex.controls["layer"].value = target
        at_once.append(time.perf_counter() - start)
        ex.layer = "block5_conv3"
        settle()
    results["warm-up in the background, per new image"] = statistics.median(warm)
    results["layer change, first for an image (warmed up)"] = statistics.median(first)
    results["layer change, first, at once (waits for it)"] = statistics.median(at_once)
    results["layer change, later (any layer)"] = statistics.median(later)
    results["layer scrub, per step"] = statistics.median(scrub)

    big = rng.integers(0, 256, (6000, 8000, 3), dtype=np.uint8)  # 48 megapixels
    ex.add_image(big, "48 MP")
    settle()
    results["opacity change, 48 MP picture"] = timed(
        lambda i: setattr(ex.controls["alpha"], "value", float(alphas[i])), n, settle
    )
    results["colormap change, 48 MP picture"] = timed(
        lambda i: setattr(ex.controls["colormap"], "value", ["viridis", "jet"][i % 2]), n, settle
    )

    ex.close()
    results.update(asyncio.run(background(model, images[:2], rounds=max(3, n // 5))))

    print(f"\nCAMExplorer on VGG16, 224x224 image, {n} changes each (medians)")
    print(f"  {'one compiled forward pass':44s} {fwd * 1e3:8.1f} ms   1.00")
    for name, seconds in results.items():
        print(f"  {name:44s} {seconds * 1e3:8.1f} ms {seconds / fwd:6.2f}")


async def background(model, images, rounds: int) -> dict[str, float]:
    """In an event loop, as in a notebook's kernel: Score-CAM runs in the worker while the controls move."""
    ex = cw.CAMExplorer(model, images, layer="block5_conv3", background=True)
    ex.session.wait_for_warm_ups()

    async def until(condition) -> float:
        start = time.perf_counter()
        while not condition():
            await asyncio.sleep(0.001)
        return time.perf_counter() - start

    full, opacity, newer, grids = [], [], [], {"methods": [], "layers": []}
    for i in range(rounds):
        ex.controls["class"].value = 20 + i  # a class never asked for: its Score-CAM is computed
        await until(lambda: not ex.busy)
        ex.controls["method"].value = "scorecam"
        await asyncio.sleep(0.3)
        assert ex.busy
        before = ex.controls["overlay"].value
        ex.controls["alpha"].value = 0.3 + 0.02 * i  # applies to the view on screen, now
        opacity.append(await until(lambda: ex.controls["overlay"].value != before))
        ex.controls["method"].value = "gradcam++"  # supersedes the Score-CAM still running
        newer.append(await until(lambda: not ex.busy and "Grad-CAM++:" in ex.status_text))
        ex.controls["method"].value = "scorecam"  # and once to the end, for the whole time
        full.append(await until(lambda: not ex.busy) + 0.0)
        ex.controls["method"].value = "gradcam"
        await until(lambda: not ex.busy)
        for kind in grids:
            ex.controls["mode"].value = f"Compare {kind}"
            grids[kind].append(await until(lambda: not ex.busy))
        ex.controls["mode"].value = "Overlay"
        await until(lambda: not ex.busy)
    ex.close()
    return {
        "Score-CAM (64 channels), in the background": statistics.median(full),
        "opacity change while Score-CAM runs": statistics.median(opacity),
        "newer request while Score-CAM runs -> its view": statistics.median(newer),
        "compare methods grid (6 maps, one capture)": statistics.median(grids["methods"]),
        "compare layers grid (depth strip of 6, Grad-CAM)": statistics.median(grids["layers"]),
    }


if __name__ == "__main__":
    main()
