"""camwidget.inputs.feed: a model with several inputs fed the images at one input and the others' values,
shared by every image (one row) or one per image, in any form given; the packed inputs give the model's output
as calling it with the values by hand does; and each wrong input is refused naming the inputs."""

from __future__ import annotations

import keras
import models
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from camwidget.errors import CAMError, ImageError
from camwidget.inputs.feed import make_feed


@pytest.fixture(scope="module")
def gated():
    return models.gated_two_inputs(seed=45)


@settings(max_examples=15, deadline=None)
@given(st.integers(1, 4), st.booleans(), st.integers(0, 2**16))
def test_the_packed_inputs_are_the_images_and_each_images_other_values(gated, n, per_image, seed):
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 1, (n, 16, 16, 3)).astype("float32")
    meta = rng.normal(size=(n if per_image else 1, 4)).astype("float32")
    feed = make_feed(gated, "image", {"meta": meta if per_image else meta[0]})  # one item: (4,)
    assert feed.other_names == ["meta"]
    rows = feed.rows(n)
    np.testing.assert_array_equal(rows[0], meta if per_image else np.repeat(meta, n, axis=0))
    want = keras.ops.convert_to_numpy(gated({"image": x, "meta": rows[0]}))
    got = keras.ops.convert_to_numpy(gated(feed.pack(x, rows)))
    np.testing.assert_allclose(got, want, atol=1e-6)
    image = n - 1  # n variants of one image (Score-CAM's copies): that image's row, n times
    np.testing.assert_array_equal(feed.rows(3, image=image)[0], np.repeat(meta[image if per_image else 0 :][:1], 3, 0))


def test_the_other_values_may_be_given_by_name_index_order_or_alone(gated):
    meta = np.arange(8, dtype=np.float64).reshape(2, 4)
    index = make_feed(gated, "image", {"meta": meta}).index
    forms = [{"meta": meta}, {1 - index: meta}, [meta], meta]
    feeds = [make_feed(gated, "image", form) for form in forms] + [make_feed(gated, index, meta)]
    for feed in feeds:
        assert feed.index == index and feed.others[0].dtype == np.float32
        np.testing.assert_array_equal(feed.others[0], meta.astype(np.float32))
    assert len({feed.signature for feed in feeds}) == 1


def test_each_wrong_input_is_refused_naming_the_inputs(gated):
    meta = np.zeros(4, np.float32)
    refusals = [
        (dict(input=None, other_inputs={"meta": meta}), CAMError, r"the model has 2 inputs \('image', 'meta'\)"),
        (dict(input="size", other_inputs=meta), CAMError, r"input 'size' not found; the model's inputs are"),
        (dict(input=2, other_inputs=meta), CAMError, r"input index 2 is out of range"),
        (dict(input="image", other_inputs=None), CAMError, r"the model also takes 'meta': give their values"),
        (dict(input="image", other_inputs={"mta": meta}), CAMError, r"other_inputs names 'mta', which are not"),
        (dict(input="image", other_inputs=np.zeros(5)), ImageError, r"other input 'meta' has shape \(5,\)"),
        (dict(input="image", other_inputs=np.full(4, np.nan)), ImageError, r"'meta' contains NaN or infinite"),
        (dict(input="image", other_inputs=np.array(["a"] * 4)), ImageError, r"'meta' has dtype <U1; expected"),
    ]
    for kwargs, error, message in refusals:
        with pytest.raises(error, match=message):
            make_feed(gated, **kwargs)
    feed = make_feed(gated, "image", np.zeros((3, 4)))
    with pytest.raises(CAMError, match=r"input 'meta' was given 3 rows for 2 images"):
        feed.rows(2)
    single = models.small_cnn(name="feed_one_input")
    assert make_feed(single, None, None) is None
    with pytest.raises(CAMError, match="input= and other_inputs= are for models with several inputs"):
        make_feed(single, None, meta)
