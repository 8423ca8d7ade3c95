"""Inputs that are not photos, for the explorer: 1-D signals and clips (or volumes) of frames.

The explorer shows everything as a picture with a 2-D map on it, so each kind says how:

* a signal (L, C) is drawn as a line picture, and its map (l,) becomes a (1, l) map: stretched over the
  picture, each column is coloured by the map at that time, a coloured band behind the line;
* a clip (T, H, W, C) shows one frame at a time, and its map (d, h, w) the slice for that frame:
  frame t of T falls in slice floor(t * d / T).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import cv2
import numpy as np

from camwidget.errors import ImageError
from camwidget.inputs.images import ValueRange, read_picture

SIGNAL_SIZE = (200, 640)  # (height, width) of a signal's picture
_LINE_COLOURS = ((20, 20, 20), (90, 90, 200), (200, 90, 60), (60, 150, 60))


def read_signals(signals: Any) -> tuple[list[np.ndarray], list[str] | None]:
    """(N, L, C) or one (L, C) or (L,) array, a list of them, or a dict {name: signal} -> float32 (L, C) each,
    and names where a dict gave them."""
    if isinstance(signals, Mapping):
        if not signals:
            raise ImageError("no signals given: the dict is empty")
        return [_signal(v, repr(str(k))) for k, v in signals.items()], [str(k) for k in signals]
    if isinstance(signals, (list, tuple)):
        if not signals:
            raise ImageError("no signals given")
        return [_signal(v, f"signal {i}") for i, v in enumerate(signals)], None
    array = _numbers(signals, "signals")
    if array.ndim == 3:
        if len(array) == 0:
            raise ImageError("no signals given: the batch is empty")
        return [_signal(a, f"signal {i}") for i, a in enumerate(array)], None
    return [_signal(array, "the signal")], None


def _numbers(value: Any, name: str) -> np.ndarray:
    if hasattr(value, "numpy") and not isinstance(value, np.ndarray):
        value = value.numpy()
    if not isinstance(value, np.ndarray):
        raise TypeError(f"{name} must be numpy arrays (length, channels), not {type(value).__name__}")
    if not np.issubdtype(value.dtype, np.number) or np.issubdtype(value.dtype, np.complexfloating):
        raise ImageError(f"{name} has dtype {value.dtype}; expected numbers")
    return value


def _signal(value: Any, name: str) -> np.ndarray:
    array = _numbers(value, name)
    if array.ndim == 1:
        array = array[:, None]
    if array.ndim != 2 or array.shape[0] < 2:
        raise ImageError(f"{name} has shape {array.shape}; a signal is (length, channels) or (length,)")
    if not np.isfinite(array).all():
        raise ImageError(f"{name} contains NaN or infinite values")
    return array.astype(np.float32)


def signal_picture(signal: np.ndarray, size: tuple[int, int] = SIGNAL_SIZE) -> np.ndarray:
    """The signal drawn as lines (one per channel, up to 4) on white, RGB uint8 (height, width, 3), each
    channel scaled to the picture's height; a grey line marks zero where it is in range."""
    height, width = size
    picture = np.full((height, width, 3), 255, np.uint8)
    margin = 8
    x = np.linspace(0, width - 1, len(signal))
    low, high = float(signal.min()), float(signal.max())
    span = high - low if high > low else 1.0

    def rows(values: np.ndarray) -> np.ndarray:
        return margin + (high - values) / span * (height - 2 * margin)

    if low < 0 < high:
        y0 = int(round(float(rows(np.array([0.0]))[0])))
        cv2.line(picture, (0, y0), (width - 1, y0), (170, 170, 170), 1)
    for channel in range(min(signal.shape[1], len(_LINE_COLOURS))):
        points = np.stack([x, rows(signal[:, channel])], axis=1).round().astype(np.int32)
        cv2.polylines(picture, [points], False, _LINE_COLOURS[channel], 2, cv2.LINE_AA)
    return picture


def read_clips(
    clips: Any, value_range: ValueRange | None = None, max_pixels: int | None = None
) -> tuple[list[np.ndarray], list[str] | None]:
    """Clips or volumes -> RGB uint8 (T, H, W, 3) frames each, and names where a dict gave them.

    One clip: a (T, H, W, C) array or a list of frames (each a path, PIL image or (H, W, C) array). Several:
    an (N, T, H, W, C) array, a list of (T, H, W, C) arrays, or a dict {name: clip}. Frames are read as the
    explorer reads pictures (any dtype; see images.read_picture)."""
    kwargs = {} if max_pixels is None else {"max_pixels": max_pixels}

    def clip(value: Any, name: str) -> np.ndarray:
        if isinstance(value, np.ndarray) and value.ndim == 4:
            frames = list(value)
        elif isinstance(value, (list, tuple)) and value:
            frames = list(value)
        else:
            shape = getattr(value, "shape", None)
            raise ImageError(
                f"{name} is {shape if shape is not None else type(value).__name__}; a clip is "
                "(frames, height, width, channels) or a list of frames"
            )
        pictures = [read_picture(f, f"{name}, frame {t}", value_range, **kwargs).pixels for t, f in enumerate(frames)]
        if len({p.shape for p in pictures}) > 1:
            raise ImageError(f"{name} has frames of different sizes: {sorted({p.shape for p in pictures})}")
        return np.stack(pictures)

    if isinstance(clips, Mapping):
        if not clips:
            raise ImageError("no clips given: the dict is empty")
        return [clip(v, repr(str(k))) for k, v in clips.items()], [str(k) for k in clips]
    if isinstance(clips, np.ndarray) and clips.ndim == 5:
        return [clip(c, f"clip {i}") for i, c in enumerate(clips)], None
    if isinstance(clips, (list, tuple)) and clips and all(isinstance(c, np.ndarray) and c.ndim == 4 for c in clips):
        return [clip(c, f"clip {i}") for i, c in enumerate(clips)], None
    return [clip(clips, "the clip")], None


def frame_slice(frame: int, frames: int, slices: int) -> int:
    """The map slice (of `slices`) that frame `frame` (of `frames`) falls in."""
    return min(slices - 1, frame * slices // max(frames, 1))


def screen_map(cam: np.ndarray, kind: str, frame: int = 0, frames: int = 1) -> np.ndarray:
    """A map as the explorer draws it, 2-D: a signal's (l,) as (1, l); a clip's (d, h, w) slice for `frame`."""
    if kind == "signal":
        return cam[None, :]
    if kind == "volume":
        return cam[frame_slice(frame, frames, cam.shape[0])]
    return cam
