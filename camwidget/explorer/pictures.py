"""The explorer's pictures (or signals, or clips): as read, as the screen shows them, as the model takes them.

A picture is read once (EXIF-upright RGB uint8), shown at most DISPLAY_SIDE pixels on its longer side (so a
slider move costs the same for any size), and prepared for the model once (resized, channels matched,
preprocessed), until the model's input changes (:meth:`Pictures.forget_inputs`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, TypeVar, cast

import cv2
import numpy as np

from camwidget.errors import CAMError, ImageError
from camwidget.inputs import preprocess as preprocessing
from camwidget.inputs.images import (
    ImageLike,
    Images,
    ValueRange,
    check_value_range,
    load_pictures,
    picture_names,
    read_picture,
)
from camwidget.inputs.samples import read_clips, read_signals, signal_picture
from camwidget.limits import DISPLAY_SIDE, MAX_PIXELS, MAX_SIDE

Resized = tuple[tuple[int, int], tuple[int, int]]  # (from, to), each (h, w)


class Pictures:
    """What the explorer shows and what the model takes, per image index.

    Attributes:
        kind: "image", "signal" (1-D, (L, C)) or "volume" (clips, (T, H, W, C)), by what the model takes.
        pixels: per image RGB uint8 (H, W, 3); per signal its line picture; per clip its frames (T, H, W, 3).
        signals: the signals themselves (L, C), for a model of signals.
        notes: per image, how it was read (said in the status line).
        names: per image, its name on screen.
        resized: index -> (from, to) sizes where the model saw it resized.
    """

    def __init__(
        self,
        images: Images,
        kind: str,
        steps: preprocessing.Preprocessing,
        expected: Callable[[], tuple[int | None, ...] | None],
        max_side: int = MAX_SIDE,
        value_range: ValueRange | None = None,
        max_pixels: int = MAX_PIXELS,
    ) -> None:
        """Read `images` for a model of `kind`; `expected()` gives one input's shape as the model is now."""
        check_max_side(max_side)
        check_max_pixels(max_pixels)
        self.kind = kind
        self.preprocessing = steps
        self._expected = expected
        self.max_side = int(max_side)
        self.value_range = None if value_range is None else check_value_range(value_range)
        self.max_pixels = int(max_pixels)
        self.pixels: list[np.ndarray]
        self.signals: list[np.ndarray] = []
        if kind == "image":
            pictures = load_pictures(images, self.value_range, self.max_pixels)
            self.pixels = [p.pixels for p in pictures]
            self.notes: list[tuple[str, ...]] = [p.notes for p in pictures]
            self.names: list[str] = picture_names(images, len(self.pixels))
        else:
            self.pixels, self.signals, names = self._read_samples(images)
            self.notes = [() for _ in self.pixels]
            noun = "signal" if kind == "signal" else "clip"
            self.names = names or [f"{noun} {i}" for i in range(len(self.pixels))]
        self._display: dict[Any, np.ndarray] = {}
        self._inputs: dict[int, np.ndarray] = {}
        self.resized: dict[int, Resized] = {}

    def __len__(self) -> int:
        return len(self.pixels)

    def describe(self, index: int) -> str:
        """Picture `index`'s size as the user knows it: "451×300" (width × height) for a picture, "256 samples,
        3 channels" for a signal (not its drawing's pixels), "16 frames of 112×112" for a clip."""
        if self.kind == "signal":
            length, channels = self.signals[index].shape
            return f"{length} samples, {channels} channel{'s' if channels != 1 else ''}"
        if self.kind == "volume":
            frames, h, w = self.pixels[index].shape[:3]
            return f"{frames} frames of {w}×{h}"
        h, w = self.pixels[index].shape[:2]
        return f"{w}×{h}"

    def forget_inputs(self) -> None:
        """Prepare every picture for the model again (its input size may have changed)."""
        self._inputs.clear()
        self.resized.clear()

    def clear(self) -> None:
        """Drop what was prepared for the model and for the screen (made again when asked for)."""
        self.forget_inputs()
        self._display.clear()

    # -- images --------------------------------------------------------------------------------------------

    def add(
        self,
        image: ImageLike,
        name: str,
        value_range: ValueRange | None,
        check: Callable[[np.ndarray], Any],
    ) -> int:
        """Add an image (a path, array, PIL image or file bytes); returns its index. Nothing is kept unless the
        picture can be read and ``check(model_input)`` (the model takes it) does not raise."""
        if self.kind != "image":
            pixels_list, signals, _ = self._read_samples({name: image})
            pixels, notes = pixels_list[0], ()
            prepared, resized = self._prepare(signals[0] if signals else pixels)
        else:
            picture = read_picture(image, repr(name), value_range or self.value_range, self.max_pixels)
            pixels, notes = picture.pixels, picture.notes
            prepared, resized = self._prepare(pixels)
        check(prepared)  # the model must take it: raises before anything is kept
        self.pixels.append(pixels)
        if self.kind == "signal":
            self.signals.append(signals[0])
        self.notes.append(notes)
        self.names.append(name)
        index = len(self.pixels) - 1
        self._inputs[index] = prepared
        if resized:
            self.resized[index] = resized
        return index

    def picture(self, index: int, frame: int = 0) -> np.ndarray:
        """What image `index` shows at its own size, RGB uint8 (H, W, 3): the picture, a signal's line
        picture, or a clip's frame `frame`."""
        pixels = self.pixels[index]
        return pixels[min(frame, len(pixels) - 1)] if self.kind == "volume" else pixels

    def frames(self, index: int) -> int:
        """How many frames image `index` has (1 unless it is a clip)."""
        return len(self.pixels[index]) if self.kind == "volume" else 1

    def display_pixels(self, index: int, frame: int = 0) -> np.ndarray:
        """Image `index` (a clip's frame `frame`) at most DISPLAY_SIDE pixels on its longer side: what the
        screen shows, so that a slider move costs the same for any picture size."""
        if self.kind == "volume":
            frame = min(frame, self.frames(index) - 1)
            key: Any = (index, frame)
        else:
            key = index
        if key not in self._display:
            pixels = self.picture(index, frame)
            scale = DISPLAY_SIDE / max(pixels.shape[:2])
            if scale >= 1:
                self._display[key] = pixels
            else:
                size = (max(1, round(pixels.shape[1] * scale)), max(1, round(pixels.shape[0] * scale)))
                self._display[key] = cv2.resize(pixels, size, interpolation=cv2.INTER_AREA)
        return self._display[key]

    def model_input(self, index: int) -> np.ndarray:
        """Image `index` as the model takes it: resized to its input size (at most `max_side` pixels on the
        longer side where the model takes any size), channels matched, preprocessed."""
        if index not in self._inputs:
            self._inputs[index], resized = self._prepare(
                self.signals[index] if self.kind == "signal" else self.pixels[index]
            )
            if resized:
                self.resized[index] = resized
        return self._inputs[index]

    def _prepare(self, pixels: np.ndarray) -> tuple[np.ndarray, Resized | None]:
        expected = self._expected() or (None, None, 3)
        if self.kind == "signal":
            return _signal_input(pixels, expected, self.preprocessing.fn), None
        if self.kind == "volume":
            return _clip_input(pixels, expected, self.max_side, self.preprocessing.fn)
        return preprocessing.model_input(pixels, expected, self.max_side, self.preprocessing.fn)

    def _read_samples(self, given: Any) -> tuple[list[np.ndarray], list[np.ndarray], list[str] | None]:
        """(what each shows, the signals themselves (signals only), names) for a model of signals or clips."""
        if self.kind == "signal":
            signals, names = read_signals(given)
            return [signal_picture(s) for s in signals], signals, names
        clips, names = read_clips(given, self.value_range, self.max_pixels)
        return clips, [], names


def check_max_pixels(max_pixels: Any) -> None:
    if isinstance(max_pixels, bool) or not isinstance(max_pixels, (int, np.integer)):
        raise TypeError(f"max_pixels must be an int (a picture's width × height), not {type(max_pixels).__name__}")
    if max_pixels < 1:
        raise CAMError(f"max_pixels must be positive, not {max_pixels}; the default is {MAX_PIXELS}")


def check_max_side(max_side: Any) -> None:
    if isinstance(max_side, bool) or not isinstance(max_side, (int, np.integer)):
        raise TypeError(f"max_side must be an int (pixels on an image's longer side), not {type(max_side).__name__}")
    if max_side < 32:
        raise CAMError(f"max_side must be at least 32 pixels, not {max_side}; the default is {MAX_SIDE}")


def plain_preprocessing(preprocess: Any) -> preprocessing.Preprocessing:
    """For signals and clips: the user's function, else the values as given (no image family applies)."""
    if callable(preprocess):
        return preprocessing.Preprocessing(preprocess, f"your function {getattr(preprocess, '__name__', '')}".rstrip())
    if preprocess is None or (isinstance(preprocess, str) and preprocess.lower() == "none"):
        return preprocessing.Preprocessing(lambda x: x, "none (values as given)")
    raise TypeError(f"preprocess must be None, 'none' or a function, not {preprocess!r}")


def _signal_input(
    signal: np.ndarray, expected: tuple[int | None, ...], fn: Callable[[np.ndarray], np.ndarray]
) -> np.ndarray:
    """One signal (L, C) -> the (1, L, C) batch the model takes; its length and channels must fit."""
    length, channels = expected
    if length is not None and len(signal) != length:
        raise ImageError(f"the signal has length {len(signal)}, but the model takes {length}; cut or resample it first")
    if channels is not None and signal.shape[1] != channels:
        raise ImageError(f"the signal has {signal.shape[1]} channel(s), but the model takes {channels}")
    batch = np.asarray(fn(signal[None].astype(np.float32).copy()), np.float32)
    if batch.shape[:2] != (1, len(signal)) or not np.isfinite(batch).all():
        raise ImageError(
            f"preprocess returned shape {batch.shape} or non-finite values for a signal of shape {signal.shape}"
        )
    return batch


def _clip_input(
    frames: np.ndarray, expected: tuple[int | None, ...], max_side: int, fn: Callable[[np.ndarray], np.ndarray]
) -> tuple[np.ndarray, tuple[tuple[int, int], tuple[int, int]] | None]:
    """A clip's frames (T, H, W, 3) -> the (1, T, H, W, C) batch the model takes, each frame resized and
    preprocessed as a picture would be; the number of frames must fit."""
    count = expected[0]
    if count is not None and len(frames) != count:
        raise ImageError(f"the clip has {len(frames)} frames, but the model takes {count}; give {count} frames")
    prepared = [preprocessing.model_input(f, expected[1:], max_side, fn) for f in frames]
    return np.concatenate([p[0] for p in prepared])[None], prepared[0][1]


T = TypeVar("T")


class OfPictures(Generic[T]):
    """An attribute of an object holding ``.pictures`` that is its pictures' own, with its type:
    ``session.pixels = OfPictures[list[np.ndarray]]()`` reads ``session.pictures.pixels``."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, holder: Any, owner: type | None = None) -> T:
        if holder is None:  # read on the class (help(), the docs): the attribute itself
            return self  # type: ignore[return-value]
        return cast(T, getattr(holder.pictures, self.name))
