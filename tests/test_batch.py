"""A thousand images: explain_many, the command line, its output folder, resuming, Ray, and the Gallery widget.
Every map is checked against compute_cam on the same picture read the same way."""

from __future__ import annotations

import csv
import json
import os

import cv2
import keras
import models
import numpy as np
import pytest
from keras import layers

import camwidget as cw
from camwidget import notes
from camwidget.command_line import main
from camwidget.inputs import preprocess as preprocessing
from camwidget.inputs.images import read_picture
from camwidget.pipeline.batch import explain_many, map_stats


def small_model() -> keras.Model:
    keras.utils.set_random_seed(51)
    inp = keras.Input((32, 32, 3))
    x = layers.Conv2D(8, 3, padding="same", activation="relu", name="conv")(inp)
    x = layers.MaxPooling2D()(x)
    x = layers.Conv2D(8, 3, padding="same", activation="relu", name="conv2")(x)
    return keras.Model(inp, layers.Dense(3, activation="softmax")(layers.GlobalAveragePooling2D()(x)))


@pytest.fixture(scope="module")
def model():
    return small_model()


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """Pictures of several sizes in a folder and a subfolder, and one file that is not a picture."""
    root = tmp_path_factory.mktemp("pictures")
    (root / "more").mkdir()
    rng = np.random.default_rng(0)
    for i in range(7):
        size = (40 + 10 * i, 50)
        picture = rng.integers(0, 256, (*size, 3), dtype=np.uint8)
        where = root / "more" if i % 3 == 0 else root
        cv2.imwrite(str(where / f"p{i}.jpg" if i % 2 else where / f"p{i}.png"), picture)
    (root / "broken.jpg").write_bytes(b"not a picture")
    return root


def expected(model, path):
    """compute_cam on one picture read as explain_many reads it."""
    pixels = read_picture(str(path)).pixels
    steps = preprocessing.resolve(model, None)
    x, _ = preprocessing.model_input(pixels, (32, 32, 3), 1024, steps.fn)
    return cw.compute_cam(model, x)[0], model(x).numpy()[0]


def test_explain_many_equals_compute_cam_and_reports_unreadable_files(model, folder):
    results = list(explain_many(model, str(folder), batch_size=3))
    names = [r.name for r in results]
    assert names == sorted(names, key=lambda n: (os.path.dirname(n) != "", n)) or len(names) == 8
    broken = [r for r in results if r.name == "broken.jpg"]
    assert len(broken) == 1 and "broken.jpg" in broken[0].error and broken[0].cam is None
    good = [r for r in results if r.error is None]
    assert len(good) == 7
    for item in good:
        cam, probs = expected(model, folder / item.name)
        np.testing.assert_allclose(item.cam, cam, atol=1e-5)
        assert item.top[0][0] == int(np.argmax(probs)) and item.top[0][2] == pytest.approx(float(probs.max()), abs=1e-5)
        assert item.class_index == item.top[0][0]
        assert item.stats == pytest.approx(map_stats(cam))


def test_map_stats_follow_their_definition():
    cam = np.zeros((8, 8), np.float32)
    cam[1, 6] = 1.0
    cam[3:5, 3:5] = 0.5  # in the centre (the middle half of each side)
    stats = map_stats(cam, mask=np.pad(np.ones((2, 2), bool), ((0, 6), (6, 0))))
    assert stats["peak_y"] == pytest.approx(1.5 / 8) and stats["peak_x"] == pytest.approx(6.5 / 8)
    assert stats["centre_share"] == pytest.approx(2.0 / 3.0)
    assert stats["mask_share"] == pytest.approx(1.0 / 3.0)


def test_arrays_and_datasets_are_explained_alike(model):
    import tensorflow as tf

    x = np.random.default_rng(1).integers(0, 256, (5, 32, 32, 3)).astype(np.uint8)
    from_array = [r.cam for r in explain_many(model, x, batch_size=2)]
    from_dataset = [r.cam for r in explain_many(model, tf.data.Dataset.from_tensor_slices((x, np.zeros(5))))]
    for a, b in zip(from_array, from_dataset):
        np.testing.assert_allclose(a, b, atol=1e-6)
    assert len(from_array) == 5


def test_command_line_writes_everything_and_resumes(model, folder, tmp_path, capsys):
    path = tmp_path / "model.keras"
    model.save(path)
    out = tmp_path / "report"
    code = main(["explain", str(path), str(folder), "--out", str(out), "--batch-size", "4"])
    captured = capsys.readouterr()
    assert code == 1 and "skipped 'broken.jpg'" in captured.err  # reported, not the end of the run
    assert "7 in" in captured.out
    rows = list(csv.DictReader(open(out / "results.csv")))
    assert len(rows) == 8 and {r["file"] for r in rows if r["error"]} == {"broken.jpg"}
    table = json.loads((out / "results.json").read_text())
    maps = np.load(out / "maps.npz")
    for record in table:
        if "error" in record:
            continue
        cam, probs = expected(model, folder / record["file"])
        np.testing.assert_allclose(maps[record["output"]], cam, atol=1e-5)
        assert record["top"][0]["class"] == int(np.argmax(probs))
        overlay = cv2.imread(str(out / record["overlay"]))
        assert overlay.shape[:2] == cv2.imread(str(folder / record["file"])).shape[:2]
    page = (out / "gallery.html").read_text()
    assert page.count('class="card"') == 7 and "data:image/jpeg;base64," in page and 'id="sort"' in page
    assert not [p for p in out.rglob("*") if p.name.startswith(".partial-")]  # nothing half-written
    # started again: nothing left to do but the broken file, and the same results
    code = main(["explain", str(path), str(folder), "--out", str(out)])
    assert "1 pictures in" in capsys.readouterr().out
    assert json.loads((out / "results.json").read_text()) == table
    # the same folder with another model's weights, or other settings: refused, never mixed
    other = small_model()
    other.set_weights([w + 0.1 for w in other.get_weights()])
    other.save(tmp_path / "other.keras")
    assert main(["explain", str(tmp_path / "other.keras"), str(folder), "--out", str(out)]) == 2
    assert "holds results made with another model" in capsys.readouterr().err
    assert main(["explain", str(path), str(folder), "--out", str(out), "--method", "layercam"]) == 2
    assert "holds results made with other settings" in capsys.readouterr().err
    assert json.loads((out / "results.json").read_text()) == table


def test_model_as_module_function(model, folder, tmp_path, monkeypatch, capsys):
    (tmp_path / "my_models.py").write_text(
        f"import sys\nsys.path.insert(0, {os.path.dirname(__file__)!r})\nfrom test_batch import small_model\n\n"
        "def build():\n    return small_model()\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    out = tmp_path / "o"
    main(["explain", "my_models:build", str(folder / "p1.jpg"), "--out", str(out), "--no-overlays"])
    table = json.loads((out / "results.json").read_text())
    assert len(table) == 1 and "overlay" not in table[0]
    cam, _ = expected(model, folder / "p1.jpg")
    np.testing.assert_allclose(np.load(out / "maps.npz")["p1"], cam, atol=1e-5)


def test_the_gallery_says_a_stand_in_is_one(folder):
    stand_in = models.small_cnn(name="gallery_stand_in")
    notes.mark(stand_in)
    gallery = cw.Gallery(stand_in, str(folder))
    assert gallery.status_text.startswith("Random weights: maps show how the tool works")
    assert notes.STAND_IN.split(":")[1].strip() in gallery._status.value


def test_gallery_sorts_and_opens_a_picture_in_the_explorer(model, folder):
    gallery = cw.Gallery(model, str(folder), columns=3)
    try:
        scores = [item.top[0][2] for item in gallery.items]
        assert scores == sorted(scores, reverse=True) and len(gallery.items) == 7
        assert [s.name for s in gallery.skipped] == ["broken.jpg"] and "broken.jpg" in gallery._status.value
        gallery._sort.value = "share in the centre, low first"
        shares = [item.stats["centre_share"] for item in gallery.items]
        assert shares == sorted(shares)
        card = gallery._grid.children[2]
        card.children[1].click()  # the button under the thumbnail
        explorer = gallery.explorer
        assert explorer is not None and gallery._below.children == (explorer,)
        np.testing.assert_allclose(explorer.cam, gallery.items[2].cam, atol=1e-5)
    finally:
        if gallery.explorer is not None:
            gallery.explorer.close()


def test_gallery_never_shows_thumbnails_of_an_older_model(folder):
    model = small_model()
    gallery = cw.Gallery(model, str(folder))
    try:
        before = {item.name: item.cam for item in gallery.items}
        rng = np.random.default_rng(9)
        model.set_weights([w + rng.normal(0, 0.5, w.shape).astype(w.dtype) for w in model.get_weights()])
        gallery._sort.value = "class"  # any interaction looks at the model first
        assert "The model changed since the thumbnails were made" in gallery._status.value
        for item in gallery.items:
            cam, _ = expected(model, folder / item.name)
            np.testing.assert_allclose(item.cam, cam, atol=1e-5)
        assert any(not np.allclose(before[item.name], item.cam) for item in gallery.items)
        assert gallery.refresh() is False  # nothing changed since
    finally:
        if gallery.explorer is not None:
            gallery.explorer.close()


def test_pictures_are_decoded_only_a_little_ahead(model, monkeypatch):
    """A folder of any size: at most 2 x batch_size pictures are read ahead of the one being explained."""
    import camwidget.pipeline.batch as batch

    read, explained = [], []
    original = batch.read_picture

    def counting(source, *args, **kwargs):
        read.append(1)
        return original(source, *args, **kwargs)

    monkeypatch.setattr(batch, "read_picture", counting)
    x = list(np.random.default_rng(3).integers(0, 256, (40, 32, 32, 3)).astype(np.uint8))
    for item in explain_many(model, x, batch_size=4, workers=2):
        explained.append(item.index)
        assert len(read) - len(explained) <= 2 * 4 + 4 + 1, (len(read), len(explained))
    assert explained == list(range(40))
