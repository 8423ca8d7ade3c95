"""The pictures of the explorer in the README and the docs, from models that learned something, shown in
JupyterLab in Debian's Chromium, as a user sees them:

- the classroom model of notebook 03 (circles and crosses, every training cross carrying a watermark, so its
  map sits on the watermark): the overlay (docs/explorer.png, the README's picture), side by side
  (side-by-side.png), the compare grid (compare.png) and the check map (check.png);
- notebook 04's signal model (noise, a spike or a wave packet at a random time): the signal view (signal.png);
- a clip model trained here (a bright square flashes in frames 3 to 5 of a "flash" clip): the frame slider
  at frame 4 (frame.png).

    python docs/screenshots.py            # writes the six pictures into docs/ (about 3 minutes on 2 cores)

It uses the browser tests' harness (tests/browser_harness.py): a JupyterLab server of its own on 127.0.0.1,
a throwaway home, Chromium driven by Playwright. The kernel imports camwidget from this checkout.
"""

from __future__ import annotations

import os
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
SIGNAL = """
LENGTH, SIGNAL_CLASSES = 256, ["calm", "spike", "wave"]


def make_signals(n, seed):  # notebook 04's signals: noise, plus one spike or a short wave packet at a random time
    rng = np.random.default_rng(seed)
    signals = rng.normal(0, 0.3, (n, LENGTH, 1)).astype("float32")
    labels, where, t = rng.integers(0, 3, n), rng.integers(30, LENGTH - 30, n), np.arange(LENGTH)
    for signal, label, at in zip(signals, labels, where):
        if label == 1:
            signal[at - 2 : at + 3, 0] += np.array([1.0, 2.5, 4.0, 2.5, 1.0])
        elif label == 2:
            signal[:, 0] += 2.0 * (np.exp(-(((t - at) / 8.0) ** 2)) * np.sin(2 * np.pi * (t - at) / 6.0)).astype("float32")
    return signals, labels, where


train_s, train_l, _ = make_signals(3000, seed=0)
inputs = keras.Input((LENGTH, 1))
h = layers.Conv1D(16, 7, padding="same", activation="relu", name="conv1")(inputs)
h = layers.MaxPooling1D(2, name="pool1")(h)
h = layers.Conv1D(32, 5, padding="same", activation="relu", name="conv2")(h)
h = layers.MaxPooling1D(2, name="pool2")(h)
h = layers.Conv1D(32, 5, padding="same", activation="relu", name="conv3")(h)
h = layers.GlobalMaxPooling1D(name="pool")(h)
signal_model = keras.Model(inputs, layers.Dense(3, activation="softmax", name="classes")(h))
signal_model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
signal_model.fit(train_s, train_l, epochs=4, batch_size=64, verbose=0)
test_s, test_l, test_at = make_signals(300, seed=1)
print("signal model: accuracy", signal_model.evaluate(test_s, test_l, verbose=0)[1])
waves = [(signal, at) for signal, label, at in zip(test_s, test_l, test_at) if label == 2][:3]
examples = {f"wave at t={at}": signal for signal, at in waves}
cw.CAMExplorer(signal_model, examples, class_names=SIGNAL_CLASSES)
"""
CLIP = """
FRAMES, SIDE, CLIP_CLASSES = 8, 32, ["no flash", "flash"]


def make_clips(n, seed):  # noise; in a "flash" clip a bright square shows in frames 3 to 5 only, somewhere
    rng = np.random.default_rng(seed)
    clips = rng.uniform(0.0, 0.4, (n, FRAMES, SIDE, SIDE, 3)).astype("float32")
    labels = rng.integers(0, 2, n)
    for clip, label in zip(clips, labels):
        if label:
            y, x = rng.integers(2, SIDE - 10, 2)
            clip[3:6, y : y + 8, x : x + 8] += 0.6
    return np.clip(clips, 0, 1), labels


clip_x, clip_y = make_clips(800, seed=0)
inputs = keras.Input((FRAMES, SIDE, SIDE, 3))
# kernels one frame deep: each frame's features see that frame only, so the map lights the frames that hold the square
h = layers.Conv3D(8, (1, 3, 3), padding="same", activation="relu", name="conv3d_1")(inputs)
h = layers.MaxPooling3D((1, 2, 2), name="pool")(h)
h = layers.Conv3D(16, (1, 3, 3), padding="same", activation="relu", name="conv3d_2")(h)
h = layers.GlobalAveragePooling3D(name="gap")(h)
clip_model = keras.Model(inputs, layers.Dense(2, activation="softmax", name="classes")(h))
clip_model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
clip_model.fit(clip_x, clip_y, epochs=25, batch_size=32, verbose=0)
test_clips, test_labels = make_clips(40, seed=1)
print("clip model: accuracy", float((clip_model.predict(test_clips, verbose=0).argmax(1) == test_labels).mean()))
flashes = {f"flash {i}": (c * 255).astype("uint8") for i, c in enumerate(test_clips[test_labels == 1][:3])}
clip_explorer = cw.CAMExplorer(clip_model, flashes, class_names=CLIP_CLASSES, alpha=0.55)
clip_explorer.frame = 4  # the square is there in frames 3 to 5
clip_explorer
"""
PICTURES = ("explorer.png", "side-by-side.png", "compare.png", "check.png", "signal.png", "frame.png")


def loaded(page, locator, timeout: int = 300_000, other_than: str | None = None) -> None:
    """Wait until the <img> `locator` is shown and decoded (and, given `other_than`, no longer that src)."""
    page.wait_for_function(
        "([el, old]) => el.offsetParent !== null && el.complete && el.naturalWidth > 0 && el.src !== old",
        arg=[locator.element_handle(), other_than],
        timeout=timeout,
    )


def choose_view(page, explorer, label: str) -> None:
    explorer.locator(".camwidget-mode select").first.select_option(label=label)


def shoot(page, explorer, name: str) -> None:
    page.wait_for_timeout(1500)  # the last repaint and the status line
    explorer.scroll_into_view_if_needed()
    explorer.screenshot(path=str(DOCS / name))
    print("wrote", DOCS / name)


def main() -> None:
    # the kernel imports camwidget from this checkout, installed or not
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(DOCS.parent), os.environ.get("PYTHONPATH")]))
    with tempfile.TemporaryDirectory() as folder:
        root, home = Path(folder) / "root", Path(folder) / "home"
        root.mkdir()
        cells = [nbformat.v4.new_code_cell(source) for source in (TRAIN, SHOW, SIGNAL, CLIP)]
        notebook = nbformat.v4.new_notebook(cells=cells)
        notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
        nbformat.write(notebook, root / "classroom.ipynb")
        with h.jupyter_server(root, home) as server, h.chromium_page(width=1100, height=1000) as page:
            page.goto(server.page_url("lab/tree/classroom.ipynb"))
            page.wait_for_selector(".jp-Notebook .jp-Cell", state="attached", timeout=120_000)
            h.run_all_cells(page)
            page.wait_for_function(
                "() => document.querySelectorAll('.camwidget-explorer').length >= 3", timeout=900_000
            )
            classroom, signal, clip = (page.locator(".camwidget-explorer").nth(i) for i in range(3))
            page.wait_for_function("(el) => el.textContent.includes('cross')", arg=classroom.element_handle())
            shoot(page, classroom, "explorer.png")

            choose_view(page, classroom, "Side by side")
            loaded(page, classroom.locator("img.camwidget-heatmap").first)
            shoot(page, classroom, "side-by-side.png")

            grid = classroom.locator("img.camwidget-grid").first
            choose_view(page, classroom, "Compare methods")
            loaded(page, grid)
            shoot(page, classroom, "compare.png")

            compared = grid.get_attribute("src")
            choose_view(page, classroom, "Check map")
            loaded(page, grid, other_than=compared)
            shoot(page, classroom, "check.png")

            for explorer, name, says in ((signal, "signal.png", "wave"), (clip, "frame.png", "frame 4")):
                page.wait_for_function("([el, s]) => el.textContent.includes(s)", arg=[explorer.element_handle(), says])
                shoot(page, explorer, name)


if __name__ == "__main__":
    main()
