"""Images in: paths, arrays, PIL images -> validated arrays.

Two kinds of image are handled here. *Display images* (what the explorer shows) become RGB uint8
(H, W, 3) at their own size. *Model batches* (what compute_cam takes) are already in the model's input
space and are only checked and stacked to float32 (N, H, W, C).
"""

from __future__ import annotations

import io
import os
import re
import struct
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import keras
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from camwidget.errors import ImageError
from camwidget.limits import MAX_PIXELS

ImageLike = str | os.PathLike | np.ndarray | Image.Image | bytes
ValueRange = tuple[float, float]
Images = ImageLike | Sequence[ImageLike] | Mapping[str, ImageLike]  # one, a list, or {name: image}

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff")
_SIXTEEN_BIT_MODES = ("I;16", "I;16L", "I;16B", "I;16N")
_CHANNELS = (1, 3, 4)


@dataclass(frozen=True)
class Picture:
    """One image as the explorer shows it: RGB uint8 (H, W, 3), upright, and how it was read."""

    pixels: np.ndarray
    notes: tuple[str, ...] = ()  # e.g. "turned upright (EXIF orientation 6)", "16-bit, read as 0-65535"


def to_rgb_uint8(
    image: ImageLike, name: str = "image", value_range: ValueRange | None = None, max_pixels: int = MAX_PIXELS
) -> np.ndarray:
    """One image -> RGB uint8 (H, W, 3) at its own size; see :func:`read_picture`."""
    return read_picture(image, name, value_range, max_pixels).pixels


def read_picture(
    image: ImageLike, name: str = "image", value_range: ValueRange | None = None, max_pixels: int = MAX_PIXELS
) -> Picture:
    """One image -> :class:`Picture`.

    Files, file bytes and PIL images are turned upright as their EXIF orientation tag says; 16-bit and 32-bit
    integer, float, palette and CMYK pictures become 8-bit RGB at their full range. Files are checked for
    pixel count (`max_pixels`) before they are decoded.

    Arrays: the range is decided by the dtype, never by a few values: uint8 0-255; uint16 0-65535; other
    integer types 0-255 (values outside it are an error, not a rescale); floats 0-1, where values above 1
    are clipped (with a warning) unless more than 1% of them are above 1 and none above 255: then the array
    is read as 0-255, with a warning that says so. `value_range=(low, high)` says the range outright. Shapes:
    (H, W), (H, W, 1 | 3 | 4) with alpha dropped, or channels first (1 | 3 | 4, H, W), transposed.
    """
    if value_range is not None:
        value_range = check_value_range(value_range)
    if isinstance(image, (str, os.PathLike)):
        return _decode(_read_file(Path(image)), repr(os.fspath(image)), value_range, max_pixels)
    if isinstance(image, (bytes, bytearray)):
        return _decode(bytes(image), name, value_range, max_pixels)
    if isinstance(image, Image.Image):
        _check_size(image.size, name, max_pixels)
        return _from_pil(image, name, value_range)
    if hasattr(image, "numpy") and not isinstance(image, np.ndarray):  # a tf.Tensor
        image = image.numpy()
    if not isinstance(image, np.ndarray):
        raise TypeError(f"{name} must be a file path, a numpy array or a PIL image, not {type(image).__name__}")
    _check_size(image.shape[:2] if image.ndim >= 2 else (0, 0), name, max_pixels)
    return _array_to_picture(image, name, value_range)


def check_value_range(value_range: Any) -> ValueRange:
    try:
        low, high = (float(v) for v in value_range)
    except (TypeError, ValueError):
        raise TypeError(f"value_range must be (low, high), e.g. (0, 1) or (0, 255), not {value_range!r}") from None
    if not np.isfinite([low, high]).all() or high <= low:
        raise ImageError(
            f"value_range must be (low, high) with low < high, e.g. (0, 1) or (0, 255), not {value_range!r}"
        )
    return low, high


def _read_file(path: Path) -> bytes:
    if not path.exists():
        raise FileNotFoundError(f"image file not found: {str(path)!r}")
    if path.is_dir():
        raise ImageError(f"{str(path)!r} is a folder, not an image file")
    return path.read_bytes()


def _check_size(size: Sequence[int], name: str, max_pixels: int) -> None:
    a, b = (int(v) for v in size[:2])
    if a * b > max_pixels:
        raise ImageError(
            f"{name} is {a}×{b} = {a * b / 1e6:.0f} megapixels, more than the limit of {max_pixels / 1e6:.0f} "
            "megapixels (max_pixels=); shrink it first, or raise the limit if you trust the file"
        )


def _decode(data: bytes, name: str, value_range: ValueRange | None, max_pixels: int) -> Picture:
    unreadable = f"{name} is not an image that can be read (jpg, png, bmp, gif, webp, tiff …)"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # our own limit decides, below
        try:
            img = Image.open(io.BytesIO(data))
        except Image.DecompressionBombError as exc:
            pixels = re.search(r"\((\d+) pixels\)", str(exc))
            size = f"{int(pixels.group(1)) / 1e6:.0f} megapixels" if pixels else "too many pixels"
            raise ImageError(
                f"{name} has {size}, more than the limit of {max_pixels / 1e6:.0f} megapixels (max_pixels=): "
                "it may be a decompression bomb; shrink it first"
            ) from None
        except UnidentifiedImageError:
            size = _tiff_size(data)  # a TIFF Pillow cannot decode (float RGB): OpenCV, once its size is checked
            if size is not None:
                _check_size(size, name, max_pixels)
                fallback = _decode_with_opencv(data, None, name, value_range)
                if fallback is not None:
                    return fallback
            raise ImageError(f"{unreadable}: its contents are not a picture format") from None
        except (OSError, ValueError) as exc:
            raise ImageError(f"{unreadable}: {exc}") from None
    with img:
        _check_size(img.size, name, max_pixels)  # from the header: nothing is decoded yet
        try:
            img.seek(0)
            img.load()
            return _from_pil(img, name, value_range)
        except (OSError, ValueError, SyntaxError) as exc:
            fallback = _decode_with_opencv(data, img, name, value_range)
            if fallback is None:
                raise ImageError(f"{unreadable}: {exc}") from None
            return fallback


def _tiff_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from a TIFF's first image directory, read without decoding anything; None if not a TIFF."""
    order = {b"II*\x00": "<", b"MM\x00*": ">"}.get(data[:4])
    if order is None or len(data) < 8:
        return None
    try:
        (offset,) = struct.unpack(order + "I", data[4:8])
        (count,) = struct.unpack(order + "H", data[offset : offset + 2])
        found = {}
        for i in range(count):
            tag, kind, _, value = struct.unpack(order + "HHI4s", data[offset + 2 + 12 * i : offset + 14 + 12 * i])
            if tag in (256, 257):
                found[tag] = struct.unpack(order + ("H" if kind == 3 else "I"), value[: 2 if kind == 3 else 4])[0]
        return (found[256], found[257]) if len(found) == 2 else None
    except (struct.error, KeyError):
        return None


def _decode_with_opencv(
    data: bytes, img: Image.Image | None, name: str, value_range: ValueRange | None
) -> Picture | None:
    """What Pillow identifies but cannot decode (a float RGB TIFF): OpenCV, at full depth, turned upright."""
    array = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if array is None:
        return None
    if array.ndim == 3 and array.shape[-1] in (3, 4):
        array = array[..., [2, 1, 0]]  # BGR(A) -> RGB, alpha dropped
    picture = _array_to_picture(array, name, value_range)
    orientation = _orientation(img) if img is not None else None
    if orientation not in _ORIENT:
        return picture
    turned = np.ascontiguousarray(_ORIENT[orientation](picture.pixels))
    return Picture(turned, picture.notes + (f"turned upright (EXIF orientation {orientation})",))


# What ImageOps.exif_transpose does for each EXIF orientation, on an (H, W, C) array.
_ORIENT = {
    2: lambda a: a[:, ::-1],
    3: lambda a: a[::-1, ::-1],
    4: lambda a: a[::-1],
    5: lambda a: a.transpose(1, 0, 2),
    6: lambda a: np.rot90(a, -1),
    7: lambda a: a[::-1, ::-1].transpose(1, 0, 2),
    8: lambda a: np.rot90(a, 1),
}


def _orientation(img: Image.Image) -> int | None:
    try:
        return int(img.getexif().get(0x0112, 1))
    except (AttributeError, ValueError, TypeError, OSError):
        return None


def _from_pil(img: Image.Image, name: str, value_range: ValueRange | None) -> Picture:
    notes: list[str] = []
    orientation = _orientation(img)
    if orientation not in (None, 1):
        upright = ImageOps.exif_transpose(img)
        if upright is not None:
            img = upright
            notes.append(f"turned upright (EXIF orientation {orientation})")
    mode = img.mode
    if mode in _SIXTEEN_BIT_MODES or mode in ("I", "F"):
        array = np.asarray(img)
        if mode in _SIXTEEN_BIT_MODES:
            array = array.astype(np.uint16)
        elif mode == "I" and value_range is None:
            high = 65535 if array.max(initial=0) <= 65535 else 2**31 - 1
            value_range = (0.0, float(high))
            notes.append(f"32-bit integer picture, read as 0-{high}")
        picture = _array_to_picture(array, name, value_range)
        return Picture(picture.pixels, tuple(notes) + picture.notes)
    if mode not in ("RGB", "L"):
        notes.append(f"{_MODE_NAMES.get(mode, mode)} converted to RGB")
    return Picture(np.asarray(img.convert("RGB"), dtype=np.uint8).copy(), tuple(notes))


_MODE_NAMES = {
    "P": "palette picture",
    "PA": "palette picture",
    "CMYK": "CMYK picture",
    "RGBA": "RGBA (alpha dropped)",
    "LA": "grayscale + alpha (alpha dropped)",
    "1": "1-bit picture",
}


def _array_to_picture(a: np.ndarray, name: str, value_range: ValueRange | None = None) -> Picture:
    notes: list[str] = []
    if a.dtype == bool or not (np.issubdtype(a.dtype, np.integer) or np.issubdtype(a.dtype, np.floating)):
        raise ImageError(f"{name} has dtype {a.dtype}; expected uint8 (0-255), uint16 (0-65535) or float (0-1) pixels")
    if a.ndim == 3 and a.shape[0] in _CHANNELS and a.shape[-1] not in _CHANNELS and min(a.shape[1:]) > 4:
        a = np.moveaxis(a, 0, -1)
        notes.append(f"channels first {tuple(np.moveaxis(a, -1, 0).shape)}, transposed to (height, width, channels)")
    if a.ndim == 3 and a.shape[-1] == 1:
        a = a[..., 0]
    if a.ndim == 2:
        a = np.repeat(a[..., None], 3, axis=-1)
    elif a.ndim == 3 and a.shape[-1] == 4:
        a = a[..., :3]
    if a.ndim != 3 or a.shape[-1] != 3:
        raise ImageError(
            f"{name} has shape {a.shape}; expected (height, width) grayscale, (height, width, 1 | 3 | 4), "
            "or channels first (1 | 3 | 4, height, width)"
        )
    if a.shape[0] < 1 or a.shape[1] < 1:
        raise ImageError(f"{name} is empty: shape {a.shape}")
    if np.issubdtype(a.dtype, np.floating) and not np.isfinite(a).all():
        raise ImageError(f"{name} contains NaN or infinite values")
    low, high, how = _range_of(a, name, value_range)
    if how:
        notes.append(how)
    if (low, high) == (0.0, 255.0) and a.dtype == np.uint8:
        return Picture(np.ascontiguousarray(a), tuple(notes))
    scaled = (a.astype(np.float64) - low) * (255.0 / (high - low))
    return Picture(np.clip(np.rint(scaled), 0, 255).astype(np.uint8), tuple(notes))


def _range_of(a: np.ndarray, name: str, value_range: ValueRange | None) -> tuple[float, float, str | None]:
    """(low, high, a note for the status line) of an array's pixel values, by the rules of read_picture."""
    if value_range is not None:
        return value_range[0], value_range[1], f"read as {value_range[0]:g}-{value_range[1]:g} (value_range)"
    if a.dtype == np.uint8:
        return 0.0, 255.0, None
    if a.dtype == np.uint16:
        return 0.0, 65535.0, "16-bit, read as 0-65535"
    if np.issubdtype(a.dtype, np.integer):
        if a.min() < 0 or a.max() > 255:
            raise ImageError(
                f"{name} has {a.dtype} values from {a.min()} to {a.max()}, outside 0-255; give uint8 (0-255) or "
                "uint16 (0-65535) pixels, or say the range with value_range=(low, high)"
            )
        return 0.0, 255.0, None
    if a.min() < 0:
        raise ImageError(
            f"{name} has negative values (min {a.min():.3g}): give the picture as uint8 0-255 or float 0-1, "
            "pass the model's preprocessing as preprocess=, or say the range with value_range=(low, high)"
        )
    top = float(a.max())
    if top <= 1.0:
        return 0.0, 1.0, "float, read as 0-1"
    above = float(np.mean(a > 1.0))
    if above > 0.01 and top <= 255.0:
        warnings.warn(
            f"{name} is a float picture with values up to {top:.4g}: read as 0-255. If it is 0-1, pass "
            "value_range=(0, 1) (values above 1 are then clipped)",
            UserWarning,
            stacklevel=4,
        )
        return 0.0, 255.0, "float with values above 1, read as 0-255"
    if above <= 0.01:
        warnings.warn(
            f"{name} is a float picture in 0-1 with {int(np.sum(a > 1.0))} value(s) above 1 (up to {top:.4g}): "
            "read as 0-1 and those clipped. If it is 0-255, pass value_range=(0, 255)",
            UserWarning,
            stacklevel=4,
        )
        return 0.0, 1.0, "float, read as 0-1 (values above 1 clipped)"
    raise ImageError(
        f"{name} has float values up to {top:.4g}, beyond both 0-1 and 0-255; say the range with "
        "value_range=(low, high)"
    )


def load_pictures(images: Images, value_range: ValueRange | None = None, max_pixels: int = MAX_PIXELS) -> list[Picture]:
    """One image, a list of them, a dict {name: image} (or an (N, H, W, C) array) -> a list of :class:`Picture`."""
    if isinstance(images, Mapping):
        if not images:
            raise ImageError("no images given: the dict is empty")
        return [read_picture(im, repr(str(name)), value_range, max_pixels) for name, im in images.items()]
    if isinstance(images, np.ndarray) and images.ndim == 4:
        if len(images) == 0:
            raise ImageError("no images given: the batch is empty (shape (0, …))")
        return [read_picture(im, f"image {i}", value_range, max_pixels) for i, im in enumerate(images)]
    if isinstance(images, (list, tuple)):
        if not images:
            raise ImageError("no images given")
        return [read_picture(im, f"image {i}", value_range, max_pixels) for i, im in enumerate(images)]
    return [read_picture(images, value_range=value_range, max_pixels=max_pixels)]


def picture_names(images: Images, count: int) -> list[str]:
    """A name per picture, for selectors and status lines: a dict's key, a file's name (a path's, or the
    file a PIL image was opened from), else 'image i'."""
    if isinstance(images, Mapping):
        return [str(name) for name in images]
    sources = list(images) if isinstance(images, (list, tuple)) else [images]
    return [_source_name(source) or f"image {i}" for i, source in zip(range(count), sources + [None] * count)]


class NamedArray(np.ndarray):
    """A picture's pixels that carry its name (``.name``), so that a list of them is listed by name in the explorer
    and in reports: ``NamedArray.of(pixels, "chelsea the cat")``. Slices and copies keep the name."""

    name: str | None

    @classmethod
    def of(cls, pixels: np.ndarray, name: str) -> NamedArray:
        named = np.asarray(pixels).view(cls)
        named.name = name
        return named

    def __array_finalize__(self, obj: Any) -> None:
        self.name = getattr(obj, "name", None)


def _source_name(source: Any) -> str | None:
    if isinstance(source, (str, os.PathLike)):
        return os.path.basename(os.fspath(source))
    if isinstance(source, NamedArray) and source.name:
        return source.name
    filename = getattr(source, "filename", None) if isinstance(source, Image.Image) else None
    return os.path.basename(filename) if isinstance(filename, str) and filename else None


def load_images(images: ImageLike | Sequence[ImageLike]) -> list[np.ndarray]:
    """One image or a list of them (or an (N, H, W, C) array) -> a list of RGB uint8 arrays."""
    return [picture.pixels for picture in load_pictures(images)]


def resize_to(image: np.ndarray, height: int | None, width: int | None) -> np.ndarray:
    """Resize to (height, width); a None side keeps the image's own size."""
    h, w = image.shape[:2]
    height, width = height or h, width or w
    if (h, w) == (height, width):
        return image
    shrinking = height * width < h * w
    return cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)


_ITEM_AXES = {2: "(length, channels)", 3: "(height, width, channels)", 4: "(depth, height, width, channels)"}


def device_batch(images: Any, rank: int = 3) -> Any | None:
    """A batch that is already a JAX or torch tensor, kept where it is (on the GPU), as float32, its shape and
    dtype checked; None for anything else (NumPy, TensorFlow: see :func:`model_batch`). compute_cam hands it to
    a pass that makes the maps on the device, so that the images never cross to the host and back. Its values
    are checked where they are read: inside that pass (``MapsCapture.input_finite``), or by model_batch when
    another method reads the batch into NumPy; either way a NaN gets model_batch's error."""
    if not _is_backend_tensor(images):
        return None
    if len(images.shape) == rank:
        images = images[None]
    dtype = keras.backend.standardize_dtype(images.dtype)
    fits = (
        len(images.shape) == rank + 1 and images.shape[0] > 0 and dtype.startswith(("float", "bfloat", "int", "uint"))
    )
    if not fits:
        return model_batch(keras.ops.convert_to_numpy(images), rank=rank)  # says what is wrong, as for NumPy
    return images if dtype == "float32" else keras.ops.cast(images, "float32")


def _is_backend_tensor(value: Any) -> bool:
    """A tensor of Keras's JAX or torch backend (which keras.ops converts to NumPy, wherever it lives)."""
    root = type(value).__module__.split(".")[0]
    return root in ("jax", "jaxlib", "torch") and keras.ops.is_tensor(value)


def model_batch(
    images: Any, name: str = "images", single_allowed: bool = True, rank: int = 3, check_values: bool = True
) -> np.ndarray:
    """Inputs already in the model's input space -> a float32 batch, checked for rank and finiteness (not the
    latter with check_values=False: for compute_cam, whose Explainer checks them where they are read).
    `rank` is one item's rank: 3 for images (H, W, C), 2 for signals (L, C), 4 for volumes or clips
    (D, H, W, C). One item becomes a batch of one where `single_allowed`."""
    item = _ITEM_AXES.get(rank, f"({rank} axes)")
    if _is_backend_tensor(images):  # a jax.Array or torch tensor, on any device
        images = keras.ops.convert_to_numpy(images)
    elif hasattr(images, "numpy") and not isinstance(images, np.ndarray):
        images = images.numpy()
    if isinstance(images, (list, tuple)):
        try:
            images = np.stack([np.asarray(im) for im in images])
        except ValueError as exc:
            raise ImageError(f"{name} could not be stacked into one batch: {exc}") from None
    if not isinstance(images, np.ndarray):
        raise TypeError(
            f"{name} must be a numpy array (N, {item[1:]} or one {item}, not {type(images).__name__}; "
            "for files or PIL images use CAMExplorer, or load them first"
        )
    if not (np.issubdtype(images.dtype, np.number)) or np.issubdtype(images.dtype, np.complexfloating):
        raise ImageError(f"{name} has dtype {images.dtype}; expected numbers")
    if images.ndim == rank and single_allowed:
        images = images[None]
    if images.ndim != rank + 1:
        raise ImageError(
            f"{name} has shape {images.shape}; expected (N, {item[1:]} or one {item}"
            + (" (the model's input)" if rank != 3 else "")
        )
    if images.shape[0] == 0:
        raise ImageError(f"{name} is an empty batch")
    batch = images.astype(np.float32, copy=False)
    if check_values and not np.isfinite(batch).all():
        bad = int((~np.isfinite(batch)).sum())
        raise ImageError(f"{name} contain {bad} NaN or infinite value(s); every pixel must be a finite number")
    return batch
