"""camwidget.audits.collect: labels and masks checked and named, unreadable pictures listed and the rest
kept, the grid's area average, and a Report as the store: what it holds is read back as it was kept, not
explained again."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_audit import CLASSES, SIZE, network, pictures, run

import camwidget as cw
from camwidget.audits.collect import Kept, collect, label_classes, mask_finder, small
from camwidget.pipeline.batch import explain_many, find_pictures
from camwidget.pipeline.report import Report


@pytest.fixture(scope="module")
def model():
    """Random weights: what is checked here does not need a trained model."""
    keras.utils.set_random_seed(5)
    return network()


def test_bad_labels_are_named(model):
    x, y, _ = pictures(12, 0)
    with pytest.raises(ValueError, match="labels has 5 entries for 12 pictures"):
        run(model, x, y[:5])
    with pytest.raises(ValueError, match=r"not classes of this model: 'dog', 7; .*from 0 to 1 or one of .*'circle'"):
        run(model, x, ["dog", 7] + ["circle"] * 10)
    found = run(model, x, ["circle", "cross"] * 6)  # names work
    assert sorted(found.per_class) == [0, 1]


def test_masks_of_the_wrong_size_are_named(model):
    x, y, _ = pictures(12, 0)
    with pytest.raises(ValueError, match=r"mask of 'image 0' is \(10, 10\) but the picture is \(32, 32\)"):
        run(model, x, y, masks=np.ones((12, 10, 10), bool))
    with pytest.raises(ValueError, match="masks has 3 entries for 12 pictures"):
        run(model, x, y, masks=np.ones((3, 32, 32), bool))


def test_unreadable_pictures_are_listed_and_the_rest_audited(model, tmp_path):
    from PIL import Image

    x, y, _ = pictures(6, 0)
    for i, picture in enumerate(x):
        Image.fromarray((picture * 255).astype(np.uint8)).save(tmp_path / f"p{i}.png")
    (tmp_path / "broken.png").write_bytes(b"not a picture")
    found = cw.audit(model, tmp_path, layer="last_conv", concepts=0, progress_bar=False)
    assert [name for name, _ in found.skipped] == ["broken.png"]
    assert any("'broken.png' could not be audited" in note for note in found.notes)
    assert len(found.names) == 6


@settings(max_examples=25, deadline=None)
@given(side=st.sampled_from([4, 8, 16]), factor=st.integers(1, 4), seed=st.integers(0, 2**16))
def test_small_is_the_mean_of_each_block(side, factor, seed):
    image = np.random.default_rng(seed).random((side * factor, side * factor, 3)).astype(np.float32)
    blocks = image.reshape(side, factor, side, factor, 3).mean(axis=(1, 3))
    np.testing.assert_allclose(small(image, side), blocks, rtol=1e-5, atol=1e-6)


def test_labels_by_name_stem_index_or_class_name():
    found = find_pictures(np.zeros((3, 8, 8, 3), np.uint8))
    assert label_classes({"image 0": "cross", "image 1": 0, "image 2": "1"}, found, CLASSES) == [1, 0, 1]
    assert label_classes(["circle", 1, np.int64(0)], found, CLASSES) == [0, 1, 0]
    with pytest.raises(ValueError, match=r"no label for 1 of 3 pictures \(first: 'image 2'\)"):
        label_classes({"image 0": 0, "image 1": 1}, found, CLASSES)
    with pytest.raises(ValueError, match="2 labels are not classes of this model: 2, -1"):
        label_classes([2, -1, 0], found, CLASSES)


def test_masks_by_name_and_in_order():
    found = find_pictures(np.zeros((2, 8, 8, 3), np.uint8))
    by_name = mask_finder({"image 1": np.ones((8, 8))}, found)
    assert by_name(found[0]) is None and by_name(found[1]).all()
    listed = mask_finder(np.zeros((2, 8, 8)), found)
    assert not listed(found[0]).any()


def test_a_store_gives_back_what_it_kept_without_explaining_again(model, tmp_path):
    x, y, masks = pictures(10, 3, "watermark")
    found = find_pictures((x * 255).astype(np.uint8))
    explained: list[int] = []

    def counting(*args, **kwargs):
        for item in explain_many(*args, **kwargs):
            explained.append(item.index)
            yield item

    def collected(store):
        return collect(model, found, list(y), mask_finder(masks, found), 16, False, store, counting, layer="last_conv")

    report = Report(str(tmp_path / "out"))
    report.assign(found)
    first = collected(report)
    assert sorted(explained) == list(range(10)) and first.reused == 0
    explained.clear()
    again = Report(str(tmp_path / "out"))  # a new run: what the folder holds
    again.assign(found)
    second = collected(again)
    assert explained == [] and second.reused == 10
    for name in ("classes", "predicted", "confidence"):
        assert getattr(first, name) == getattr(second, name), name
    for name in ("masses", "pixels", "masks"):
        for a, b in zip(getattr(first, name), getattr(second, name)):
            np.testing.assert_array_equal(a, b)
    assert first.map_shape == second.map_shape == (SIZE // 2, SIZE // 2)
    assert [p.name for p in second.pictures] == [f"image {i}" for i in range(10)]
    fresh = collected(None)
    np.testing.assert_array_equal(np.stack(fresh.masses), np.stack(second.masses))


def test_kept_arrays_read_back():
    kept = Kept(1, 0, np.float32(0.73), np.full((4, 4, 3), 0.5, np.float32), (20, 30))
    back = Kept.read(kept.arrays())
    assert (back.class_index, back.predicted, back.confidence, back.shape) == (1, 0, np.float32(0.73), (20, 30))
    np.testing.assert_array_equal(back.pixels, kept.pixels)


def test_unknown_class_names_in_the_audit_are_named(model):
    x, y, _ = pictures(6, 0)
    with pytest.raises(ValueError, match="not classes of this model: 'dog'"):
        cw.audit(model, x, labels=["dog"] * 6, layer="last_conv", class_names=CLASSES, progress_bar=False)
