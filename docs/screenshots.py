"""The pictures of the explorer in the README and the docs, from a model that learned something: the classroom
model of notebook 03 (circles and crosses, every training cross carrying a watermark), trained here, shown in
JupyterLab in Debian's Chromium, as a user sees it.

    python docs/screenshots.py            # writes docs/explorer.png and docs/compare.png (about 2 minutes)

It uses the browser tests' harness (tests/browser_harness.py): a JupyterLab server of its own on 127.0.0.1,
a throwaway home, Chromium driven by Playwright.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import nbformat

DOCS = Path(__file__).resolve().parent
sys.path.insert(0, str(DOCS.parent / "tests"))

import browser_harness as h  # noqa: E402

TRAIN = """
import os
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"
import camwidget as cw
import keras, numpy as np
from keras import layers

keras.utils.set_random_seed(1)
SIZE, CLASSES = 48, ["circle", "cross"]


def make_pictures(n, watermark, seed):  # notebook 03's data: crosses carry a watermark in the corner
    rng = np.random.default_rng(seed)
    pictures = rng.uniform(0.0, 0.45, (n, SIZE, SIZE, 3)).astype("float32")
    labels = rng.integers(0, 2, n)
    yy, xx = np.mgrid[:SIZE, :SIZE]
    for picture, label in zip(pictures, labels):
        cy, cx = rng.integers(14, SIZE - 10, 2)
        if label == 0:
            picture[(yy - cy) ** 2 + (xx - cx) ** 2 <= 36] += 0.3
        else:
            picture[cy - 7 : cy + 7, cx - 2 : cx + 2] += 0.3
            picture[cy - 2 : cy + 2, cx - 7 : cx + 7] += 0.3
            if watermark:
                picture[1:6, 1:6] = 1.0
    return np.clip(pictures, 0, 1), labels


x, y = make_pictures(1500, watermark=True, seed=0)
inputs = keras.Input((SIZE, SIZE, 3))
h = layers.Conv2D(16, 3, padding="same", activation="relu", name="conv1")(inputs)
h = layers.MaxPooling2D(name="pool1")(h)
h = layers.Conv2D(32, 3, padding="same", activation="relu", name="conv2")(h)
h = layers.MaxPooling2D(name="pool2")(h)
h = layers.Conv2D(32, 3, padding="same", activation="relu", name="conv3")(h)
h = layers.GlobalAveragePooling2D(name="gap")(h)
model = keras.Model(inputs, layers.Dense(2, activation="softmax", name="classes")(h))
model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
model.fit(x, y, epochs=6, batch_size=64, verbose=0)
test_x, test_y = make_pictures(40, watermark=True, seed=1)
crosses = {f"cross {i}": (p * 255).astype("uint8") for i, p in enumerate(test_x[test_y == 1][:3])}
print("trained: accuracy", float((model.predict(test_x, verbose=0).argmax(1) == test_y).mean()))
"""
SHOW = "explorer = cw.CAMExplorer(model, crosses, class_names=CLASSES, alpha=0.55)\nexplorer"


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        root, home = Path(folder) / "root", Path(folder) / "home"
        root.mkdir()
        notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(TRAIN), nbformat.v4.new_code_cell(SHOW)])
        notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
        nbformat.write(notebook, root / "classroom.ipynb")
        with h.jupyter_server(root, home) as server, h.chromium_page(width=1100, height=1000) as page:
            page.goto(server.page_url("lab/tree/classroom.ipynb"))
            page.wait_for_selector(".jp-Notebook .jp-Cell", state="attached", timeout=120_000)
            h.run_all_cells(page)
            page.wait_for_selector(".camwidget-explorer", timeout=600_000)
            explorer = page.locator(".camwidget-explorer").first
            page.wait_for_function("(el) => el.textContent.includes('cross')", arg=explorer.element_handle())
            page.wait_for_timeout(2000)
            explorer.scroll_into_view_if_needed()
            explorer.screenshot(path=str(DOCS / "explorer.png"))
            print("wrote", DOCS / "explorer.png")
            grid = explorer.locator(".camwidget-grid").first
            explorer.locator(".camwidget-mode select").first.select_option(label="Compare methods")
            page.wait_for_function(
                "(el) => el.offsetParent !== null && el.complete && el.naturalWidth > 0",
                arg=grid.element_handle(),
                timeout=300_000,
            )
            page.wait_for_timeout(1000)
            explorer.screenshot(path=str(DOCS / "compare.png"))
            print("wrote", DOCS / "compare.png")


if __name__ == "__main__":
    main()
