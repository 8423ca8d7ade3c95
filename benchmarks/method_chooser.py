"""Which CAM method should I trust? Every method measured on a task with a known answer.

    python benchmarks/method_chooser.py [--images 40] [--write docs/chooser.md]

A small CNN is trained here (seconds) on the localisation tests' data (tests/test_localization.py): noise, a
distracting circle in every picture, and a cross in the pictures of class 1, which is what the model learns to
look for. For every method in camwidget.METHODS, on class 1's test pictures at the last conv layer:

- pointing game: the share of maps whose peak lies on the cross (its box, 2 pixels of margin), for the trained
  model and for the same network with random weights (a method that finds the cross without training finds
  edges, not evidence);
- deletion and insertion areas (camwidget.metrics, 20 steps, mean baseline): lower deletion and higher
  insertion are more faithful;
- the randomisation check (camwidget.metrics.model_randomization, all layers re-initialised): |Spearman's rho|
  between the map before and after; near 0 means the map depends on what the model learned;
- cost: the median time of one map over one compiled forward pass of the model, measured in this run.

It prints a Markdown table (and writes it to --write), with the command and the machine's figures.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings

import _timing  # noqa: F401  (quiets TensorFlow before it is imported)
import keras
import numpy as np
from _timing import medians

import camwidget as cw
from camwidget import metrics

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests"))
from test_localization import generate, hit_rate, network  # noqa: E402  (the tests' data, written once)

LAYER = "last_conv"


def trained_model() -> tuple[keras.Model, keras.Model, np.ndarray, np.ndarray]:
    """(the trained model, the same network with random weights, class 1's test pictures, their crosses)."""
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x_train, y_train, _ = generate(2000, rng)
    x_test, y_test, corners = generate(300, rng)
    model = network()
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x_train, y_train, epochs=6, batch_size=64, verbose=0)
    keep = y_test == 1
    return model, network(), x_test[keep], corners[keep]


def measure(method: str, model: keras.Model, random: keras.Model, x: np.ndarray, corners: np.ndarray) -> dict:
    """The chooser's figures for one method (see the module's docstring)."""
    maps = cw.compute_cam(model, x, layer=LAYER, class_index=1, method=method)
    deletion = metrics.deletion(model, x, maps, class_index=1, steps=20).area
    insertion = metrics.insertion(model, x, maps, class_index=1, steps=20).area
    rho = metrics.model_randomization(model, x[:8], layer=LAYER, method=method, class_index=1).rho[-1]
    return {
        "pointing": hit_rate(model, method, x, corners),
        "pointing_random": hit_rate(random, method, x, corners),
        "deletion": deletion,
        "insertion": insertion,
        "rho": float(np.nanmean(np.abs(rho))),  # |rho|: a principal component's sign is arbitrary
    }


def verdicts(rows: list[tuple[str, dict]]) -> list[str]:
    """The table read in words, from its own figures: which methods find the object only when trained and pass
    the randomisation check, and which fail it."""
    label = {name: cw.METHODS[name].label for name, _ in rows}
    trusted = [label[n] for n, f in rows if f["pointing"] >= 0.9 and f["pointing_random"] <= 0.3 and f["rho"] <= 0.3]
    failing = [label[n] for n, f in rows if f["rho"] > 0.5]
    return [
        "Found the cross when trained (at least 90%), not with random weights (at most 30%), and changed when the "
        f"model was randomised (abs(rho) at most 0.3): {', '.join(trusted) or 'none'}.",
        "",
        "Failed the randomisation check (abs(rho) above 0.5: the map stays much the same without the training, so "
        f"it shows the input more than the model): {', '.join(failing) or 'none'}.",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=40, help="class 1's test pictures measured (default 40)")
    parser.add_argument("--rounds", type=int, default=5, help="timing rounds per method (default 5)")
    parser.add_argument("--write", metavar="FILE", help="also write the Markdown table to FILE")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    start = time.perf_counter()
    model, random, x, corners = trained_model()
    x, corners = x[: args.images], corners[: args.images]
    one = x[:1]
    forward = keras.Model(model.inputs, model.outputs)
    compiled = forward.predict_on_batch
    rows = []
    for name in cw.METHODS:
        figures = measure(name, model, random, x, corners)
        timed = medians(
            {
                "forward": lambda: compiled(one),
                "map": lambda name=name: cw.compute_cam(model, one, layer=LAYER, class_index=1, method=name),
            },
            rounds=args.rounds,
            warmup=1,
        )
        figures["cost"] = timed["map"] / timed["forward"]
        rows.append((name, figures))
        print(f"  {name}: done", file=sys.stderr)
    lines = [
        f"`python benchmarks/method_chooser.py --images {args.images}` (a small CNN trained in the run on the",
        "localisation tests' crosses; class 1's test pictures; layer `last_conv`; "
        f"{time.perf_counter() - start:.0f} s on this machine):",
        "",
        "| method | family | pointing game, trained | with random weights | deletion ↓ | insertion ↑ | "
        "randomisation abs(rho) (→ 0) | cost (× forward) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, f in rows:
        method = cw.METHODS[name]
        lines.append(
            f"| {method.label} | {method.family} | {f['pointing']:.0%} | {f['pointing_random']:.0%} | "
            f"{f['deletion']:.3f} | {f['insertion']:.3f} | {f['rho']:.2f} | {f['cost']:.1f} |"
        )
    lines += ["", *verdicts(rows)]
    table = "\n".join(lines)
    print(table)
    if args.write:
        with open(args.write, "w", encoding="utf-8") as out:
            out.write("# Which method should I trust?\n\n" + table + "\n")


if __name__ == "__main__":
    main()
