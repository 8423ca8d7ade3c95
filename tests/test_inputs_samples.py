"""camwidget.inputs.samples: signals read in every form given (with names from a dict), clips read frame by
frame, and the map the explorer draws for a signal or a frame of a clip: frame t of T in slice floor(t d / T)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from camwidget.errors import ImageError
from camwidget.inputs.samples import frame_slice, read_clips, read_signals, screen_map, signal_picture


@settings(max_examples=80, deadline=None)
@given(st.integers(1, 40), st.integers(1, 12), st.data())
def test_frame_t_of_t_frames_falls_in_slice_floor_t_d_over_t(frames, slices, data):
    frame = data.draw(st.integers(0, frames - 1))
    want = int(np.floor(frame * slices / frames))  # frames split in `slices` equal runs
    assert frame_slice(frame, frames, slices) == want
    cam = np.arange(slices * 6, dtype=np.float32).reshape(slices, 2, 3)
    np.testing.assert_array_equal(screen_map(cam, "volume", frame, frames), cam[want])


def test_a_signal_map_is_one_row_and_an_image_map_is_itself():
    line = np.arange(7.0)
    assert screen_map(line, "signal").shape == (1, 7) and (screen_map(line, "signal")[0] == line).all()
    square = np.eye(3)
    assert screen_map(square, "image") is square


def test_signals_are_read_in_every_form_as_length_by_channels(rng):
    batch = rng.normal(size=(3, 50, 2))
    read, names = read_signals(batch)
    assert names is None and len(read) == 3
    for got, want in zip(read, batch):
        assert got.dtype == np.float32
        np.testing.assert_allclose(got, want, rtol=1e-6)
    one, _ = read_signals(batch[0, :, 0])  # (L,): one channel
    assert one[0].shape == (50, 1)
    named, names = read_signals({"ecg": batch[0], "eeg": batch[1]})
    assert names == ["ecg", "eeg"] and np.allclose(named[1], batch[1])
    assert [s.shape for s in read_signals([batch[0], batch[1][:20]])[0]] == [(50, 2), (20, 2)]
    bad = batch[0].copy()
    bad[3, 1] = np.nan
    with pytest.raises(ImageError, match="'x' contains NaN or infinite values"):
        read_signals({"x": bad})
    with pytest.raises(ImageError, match=r"signal 1 has shape \(1, 2\); a signal is"):
        read_signals([batch[0], batch[0][:1]])
    with pytest.raises(TypeError, match="signals must be numpy arrays"):
        read_signals("a path")


def test_a_signal_picture_draws_each_channel_scaled_to_the_height():
    """A rising ramp: its line climbs from the bottom margin on the left to the top margin on the right."""
    picture = signal_picture(np.linspace(-1.0, 1.0, 64)[:, None].astype(np.float32), size=(100, 200))
    assert picture.shape == (100, 200, 3) and picture.dtype == np.uint8
    dark = (picture < 100).all(axis=-1)  # the line (20, 20, 20); the zero line is a light grey
    assert dark[88:94, :4].any() and dark[6:12, -4:].any()  # 8-pixel margins, 2-pixel line
    assert not dark[:50, :20].any() and not dark[50:, -20:].any()
    assert (picture[50, 100:] == 170).all(axis=-1).any()  # the grey zero line, where the ramp is above it


def test_clips_are_read_as_rgb_frames(rng):
    clip = rng.integers(0, 256, (4, 6, 8, 3), dtype=np.uint8)
    read, names = read_clips(clip)
    assert names is None and len(read) == 1
    np.testing.assert_array_equal(read[0], clip)
    grey = rng.integers(0, 256, (2, 3, 6, 8, 1), dtype=np.uint8)  # two clips of one-channel frames
    read, _ = read_clips(grey)
    assert len(read) == 2
    np.testing.assert_array_equal(read[1], np.repeat(grey[1], 3, axis=-1))
    with pytest.raises(ImageError, match="'a' has frames of different sizes"):
        read_clips({"a": [clip[0], clip[0, :4]]})
