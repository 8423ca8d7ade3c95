"""Many pictures as thumbnails (camwidget.explorer.gallery.Gallery): sorted, each opened in an explorer as its
thumbnail was explained. Sorting by the map, a broken picture and a changed model: test_batch."""

from __future__ import annotations

import io

import models
import numpy as np
import pytest
from PIL import Image

import camwidget as cw
from camwidget.explorer.gallery import SORTS, THUMBNAIL


@pytest.fixture(scope="module")
def model():
    return models.small_cnn(name="gallery")


@pytest.fixture
def folder(tmp_path):
    rng = np.random.default_rng(5)
    for i, shape in enumerate([(40, 60, 3), (300, 200, 3), (32, 32, 3)]):
        Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8)).save(tmp_path / f"p{i}.png")
    return tmp_path


def test_a_sort_not_on_the_menu_is_refused_naming_those_that_are(model, folder):
    with pytest.raises(ValueError, match="sort must be one of 'confidence, high first', .*not 'size'"):
        cw.Gallery(model, str(folder), sort="size")


def test_thumbnails_are_small_named_by_class_and_score_in_the_order_asked(model, folder):
    gallery = cw.Gallery(model, str(folder), sort="order given", class_names=["cat", "dog", "fox"])
    assert [item.name for item in gallery.items] == ["p0.png", "p1.png", "p2.png"]
    for card, item in zip(gallery._grid.children, gallery.items):
        image, button = card.children
        with Image.open(io.BytesIO(image.value)) as thumbnail:
            assert max(thumbnail.size) == min(THUMBNAIL, max(item.overlay.shape[:2]))  # large ones made small
        assert button.description == f"{item.top[0][1]} · {item.top[0][2]:.2f}" and button.tooltip == item.name
    assert list(SORTS)[-1] == "order given" and gallery.status_text.startswith("3 pictures")


def test_a_picture_opens_in_an_explorer_as_its_thumbnail_was_explained(model, folder):
    gallery = cw.Gallery(model, str(folder), sort="order given", layer="conv_a", alpha=0.3, colormap="viridis")
    try:
        first = gallery.explore(0)
        assert (first.layer, first.alpha, first.colormap) == ("conv_a", 0.3, "viridis")
        np.testing.assert_allclose(first.cam, gallery.items[0].cam, atol=1e-5)
        second = gallery.explore(1)
        assert first.comm is None and gallery._below.children == (second,)  # one explorer open at a time
        assert second.image_index == 0 and second.status_text.startswith("p1.png")
    finally:
        if gallery.explorer is not None:
            gallery.explorer.close()
