"""camwidget.explorer.pictures: what the explorer shows and what the model takes, per picture."""

from __future__ import annotations

import numpy as np
import pytest

from camwidget.errors import CAMError
from camwidget.explorer.pictures import Pictures
from camwidget.inputs import preprocess
from camwidget.limits import DISPLAY_SIDE

NONE = preprocess.Preprocessing(lambda x: x, "none")


def test_sizes_are_said_as_the_user_knows_them(rng):
    photos = Pictures(
        {"cat": rng.integers(0, 256, (30, 40, 3), dtype=np.uint8)}, "image", NONE, lambda: (None, None, 3)
    )
    assert photos.names == ["cat"] and photos.describe(0) == "40×30"
    signals = Pictures({"ecg": rng.random((256, 3)).astype(np.float32)}, "signal", NONE, lambda: (256, 3))
    assert signals.describe(0) == "256 samples, 3 channels"  # not the line drawing's pixels
    clip = rng.integers(0, 256, (8, 32, 24, 3), dtype=np.uint8)
    clips = Pictures([clip], "volume", NONE, lambda: (8, None, None, 3))
    assert clips.describe(0) == "8 frames of 24×32" and clips.frames(0) == 8


def test_the_screen_gets_at_most_display_side_and_the_model_its_size(rng):
    big = rng.integers(0, 256, (1500, 3000, 3), dtype=np.uint8)
    pictures = Pictures([big], "image", NONE, lambda: (None, None, 3), max_side=300)  # a model of any size
    shown = pictures.display_pixels(0)
    assert max(shown.shape[:2]) == DISPLAY_SIDE and shown.shape[1] / shown.shape[0] == pytest.approx(2, rel=0.01)
    assert pictures.model_input(0).shape == (1, 150, 300, 3) and pictures.resized[0] == ((1500, 3000), (150, 300))
    pictures.forget_inputs()
    assert pictures.resized == {}  # prepared again, as the model is now, when next asked


def test_a_picture_the_model_refuses_is_not_kept(rng):
    pictures = Pictures([rng.integers(0, 256, (20, 20, 3), dtype=np.uint8)], "image", NONE, lambda: (20, 20, 3))

    def refuse(_: np.ndarray) -> None:
        raise CAMError("the model does not take it")

    with pytest.raises(CAMError, match="does not take it"):
        pictures.add(rng.integers(0, 256, (20, 20, 3), dtype=np.uint8), "new", None, refuse)
    assert len(pictures) == 1 and len(pictures.notes) == 1 and "new" not in pictures.names
    assert pictures.add(rng.integers(0, 256, (20, 20, 3), dtype=np.uint8), "new", None, lambda _: None) == 1
    assert pictures.names[-1] == "new" and len(pictures.notes) == 2
