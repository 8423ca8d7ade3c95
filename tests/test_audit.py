"""cw.audit finds the Clever Hans (the issue's known answers): small CNNs trained here in seconds on pictures
made here, with a shortcut on one class (a watermark in a corner, a coloured frame, a background colour) and
without one; masks rank the maps off the object first. Each module's own tests are in test_audits_<module>.py;
this file's helpers (the pictures, the networks, `run`) serve them too."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from keras import layers
from models import all_through_explainer

import camwidget as cw

SIZE = 32
CLASSES = ["circle", "cross"]


def pictures(n: int, seed: int, shortcut: str | None = None, contrast: float = 0.5):
    """Grey noise with a circle (class 0) or a cross (class 1) anywhere in the middle, `contrast` above the
    noise; class 1 also carries `shortcut`: "watermark" (a white square in the top-left corner), "border" (a
    red frame) or "background" (a blue background instead of grey noise). Returns pictures, labels and the
    object masks."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(0.0, 0.45, (n, SIZE, SIZE, 3)).astype("float32")
    y = rng.integers(0, 2, n)
    masks = np.zeros((n, SIZE, SIZE), bool)
    yy, xx = np.mgrid[:SIZE, :SIZE]
    for i in range(n):
        cy, cx = rng.integers(10, SIZE - 10, 2)
        if y[i] == 1 and shortcut == "background":
            x[i] = np.array([0.1, 0.2, 0.75], "float32") + rng.uniform(0, 0.05, (SIZE, SIZE, 3))
        if y[i] == 0:
            shape = (yy - cy) ** 2 + (xx - cx) ** 2 <= 20
        else:
            shape = ((abs(yy - cy) <= 6) & (abs(xx - cx) <= 1)) | ((abs(yy - cy) <= 1) & (abs(xx - cx) <= 6))
        x[i][shape] += contrast
        masks[i] = shape
        if y[i] == 1 and shortcut == "watermark":
            x[i, 1:6, 1:6] = 1.0
        if y[i] == 1 and shortcut == "border":
            for band in (np.s_[:2, :], np.s_[-2:, :], np.s_[:, :2], np.s_[:, -2:]):
                x[i][band] = (0.95, 0.05, 0.05)
    return np.clip(x, 0, 1), y, masks


def network() -> keras.Model:
    inp = keras.Input((SIZE, SIZE, 3))
    x = layers.Conv2D(16, 3, padding="same", activation="relu")(inp)
    x = layers.MaxPooling2D()(x)
    x = layers.Conv2D(32, 3, padding="same", activation="relu")(x)
    x = layers.Conv2D(32, 3, padding="same", activation="relu", name="last_conv")(x)
    x = layers.GlobalAveragePooling2D()(x)
    return keras.Model(inp, layers.Dense(2, activation="softmax")(x))


def trained(shortcut: str | None, n: int, epochs: int, contrast: float, seed: int) -> keras.Model:
    keras.utils.set_random_seed(seed)
    x, y, _ = pictures(n, seed, shortcut, contrast)
    model = network()
    model.compile(keras.optimizers.Adam(3e-3), "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x, y, epochs=epochs, batch_size=32, verbose=0)
    return model


@pytest.fixture(scope="module")
def cheat():
    """Trained on crosses that carry a watermark and are faint: it learns the watermark."""
    return trained("watermark", 1000, 3, 0.1, 1)


@pytest.fixture(scope="module")
def honest():
    """Trained on clear shapes and no watermark: it learns the shapes."""
    return trained(None, 1500, 5, 0.5, 2)


def accuracy(model, x, y) -> float:
    return float((model.predict(x, verbose=0).argmax(axis=1) == y).mean())


def flagged_share(found, class_index: int) -> float:
    """The share of a class's pictures that are in a flagged cluster."""
    rows = set(np.flatnonzero(found.classes == class_index).tolist())
    hit = {r for f in found.flags() if f.kind == "cluster" and f.class_index == class_index for r in f.pictures}
    return len(hit & rows) / len(rows)


def run(model, x, y, **kwargs):
    kwargs = {"concepts": 0, **kwargs}
    return cw.audit(model, x, labels=y, layer="last_conv", class_names=CLASSES, progress_bar=False, **kwargs)


def test_watermark_is_found_and_named(cheat):
    x, y, _ = pictures(120, 100, "watermark", contrast=0.1)
    assert accuracy(cheat, x, y) >= 0.95
    found = run(cheat, x, y, concepts=2)
    assert flagged_share(found, 1) >= 0.9
    assert flagged_share(found, 0) == 0
    reasons = [f.reason for f in found.flags() if f.kind == "cluster" and f.class_index == 1]
    assert reasons and all("the top-left corner" in r and "'cross'" in r for r in reasons), reasons
    assert found.concepts is not None and found.concepts.n == 2
    share = found.per_class[1].concept_share
    assert share is not None and share.sum() == pytest.approx(1.0)


def test_honest_model_is_not_flagged_on_the_same_kind_of_data(honest):
    x, y, _ = pictures(120, 100, "watermark", contrast=0.5)  # the watermark is there; the model ignores it
    assert accuracy(honest, x, y) >= 0.95
    found = run(honest, x, y)
    flagged = {r for f in found.flags() for r in f.pictures}
    assert len(flagged) / len(y) < 0.1, [f.reason for f in found.flags()]


@pytest.mark.parametrize(("shortcut", "named"), [("border", "the border all round"), ("background", "the background")])
def test_border_and_background_shortcuts_are_found_and_named(shortcut, named):
    model = trained(shortcut, 1000, 3, 0.1, 1)
    x, y, _ = pictures(120, 100, shortcut, contrast=0.1)
    found = run(model, x, y)
    assert flagged_share(found, 1) >= 0.9
    assert flagged_share(found, 0) == 0
    reasons = [f.reason for f in found.flags() if f.kind == "cluster"]
    assert reasons and all(named in r for r in reasons), reasons


def test_masks_rank_maps_off_the_object_first(honest):
    x, y, masks = pictures(80, 5, None, contrast=0.5)
    crosses = np.flatnonzero(y == 1)
    wrong = crosses[:8]
    masks = masks.copy()
    masks[wrong] = np.roll(masks[wrong], SIZE // 2, axis=(1, 2))  # these masks miss the object
    found = run(honest, x, y, masks=masks)
    assert np.isfinite(found.mask_share).all()
    first = found.ranked(1)[: len(wrong)]
    assert set(first) == set(int(r) for r in wrong)  # rows are input order: every picture was read
    assert all(found.suspicion[r] > 0.5 for r in first)
    others = [r for r in found.ranked(1) if r not in first]
    assert max(found.suspicion[others]) < min(found.suspicion[first])
    pictures_flagged = [f for f in found.flags() if f.kind == "picture"]
    assert all("outside the object's mask" in f.reason for f in pictures_flagged)


def test_the_model_is_not_changed(cheat):
    before = [w.copy() for w in cheat.get_weights()]
    trainable = [layer.trainable for layer in cheat.layers]
    x, y, _ = pictures(20, 3, "watermark", contrast=0.1)
    run(cheat, x, y, concepts=2)
    assert all(np.array_equal(a, b) for a, b in zip(before, cheat.get_weights()))
    assert trainable == [layer.trainable for layer in cheat.layers]


def test_maps_and_concepts_come_through_the_explainer(calls, cheat):
    """The one path: every engine call that makes maps or captures has an Explainer on the stack (the engine's
    entry points wrapped by test_one_path's `calls` fixture)."""
    x, y, _ = pictures(12, 4, "watermark", contrast=0.1)
    run(cheat, x, y, concepts=2)
    all_through_explainer(calls)
