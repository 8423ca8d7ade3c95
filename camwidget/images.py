"""Images in: paths, arrays, PIL images -> validated arrays.

Two kinds of image are handled here. *Display images* (what the explorer shows) become RGB uint8
(H, W, 3) at their own size. *Model batches* (what compute_cam takes) are already in the model's input
space and are only checked and stacked to float32 (N, H, W, C).
"""

from __future__ import annotations

import io
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Union

import cv2
import numpy as np
from PIL import Image, UnidentifiedImageError

from .errors import ImageError

ImageLike = Union[str, os.PathLike, np.ndarray, Image.Image, bytes]


def to_rgb_uint8(image: ImageLike, name: str = "image") -> np.ndarray:
    """One image -> RGB uint8 (H, W, 3) at its own size.

    Arrays: uint8 0-255, or floats in 0-1 (floats above 1 are read as 0-255); (H, W), (H, W, 1), (H, W, 3)
    or (H, W, 4), whose alpha channel is dropped.
    """
    if isinstance(image, (str, os.PathLike)):
        return _read_file(Path(image))
    if isinstance(image, (bytes, bytearray)):
        return _decode(bytes(image), name)
    if isinstance(image, Image.Image):
        return np.asarray(image.convert("RGB"), dtype=np.uint8).copy()
    if hasattr(image, "numpy") and not isinstance(image, np.ndarray):  # a tf.Tensor
        image = image.numpy()
    if not isinstance(image, np.ndarray):
        raise TypeError(
            f"{name} must be a file path, a numpy array or a PIL image, not {type(image).__name__}"
        )
    return _array_to_rgb(image, name)


def _read_file(path: Path) -> np.ndarray:
    if not path.exists():
        raise FileNotFoundError(f"image file not found: {str(path)!r}")
    if path.is_dir():
        raise ImageError(f"{str(path)!r} is a folder, not an image file")
    return _decode(path.read_bytes(), repr(str(path)))


def _decode(data: bytes, name: str) -> np.ndarray:
    try:
        with Image.open(io.BytesIO(data)) as img:
            img.seek(0)
            return np.asarray(img.convert("RGB"), dtype=np.uint8).copy()
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise ImageError(
            f"{name} is not an image that can be read (jpg, png, bmp, gif, webp, tiff …): {exc}"
        ) from None


def _array_to_rgb(a: np.ndarray, name: str) -> np.ndarray:
    if a.dtype == bool or not (np.issubdtype(a.dtype, np.integer) or np.issubdtype(a.dtype, np.floating)):
        raise ImageError(f"{name} has dtype {a.dtype}; expected uint8 (0-255) or float (0-1) pixels")
    if a.ndim == 3 and a.shape[-1] == 1:
        a = a[..., 0]
    if a.ndim == 2:
        a = np.repeat(a[..., None], 3, axis=-1)
    elif a.ndim == 3 and a.shape[-1] == 4:
        a = a[..., :3]
    if a.ndim != 3 or a.shape[-1] != 3:
        raise ImageError(
            f"{name} has shape {a.shape}; expected (height, width) grayscale, or (height, width, 1 | 3 | 4)"
        )
    if a.shape[0] < 1 or a.shape[1] < 1:
        raise ImageError(f"{name} is empty: shape {a.shape}")
    if np.issubdtype(a.dtype, np.floating):
        if not np.isfinite(a).all():
            raise ImageError(f"{name} contains NaN or infinite values")
        if a.min() < 0:
            raise ImageError(
                f"{name} has negative values (min {a.min():.3g}): give the picture as uint8 0-255 or float "
                "0-1, and pass the model's preprocessing as preprocess="
            )
        scale = 255.0 if a.max() <= 1.0 else 1.0
        return np.clip(np.rint(a * scale), 0, 255).astype(np.uint8)
    if a.min() < 0 or a.max() > 255:
        raise ImageError(f"{name} has integer values outside 0-255 (min {a.min()}, max {a.max()})")
    return a.astype(np.uint8)


def load_images(images: ImageLike | Sequence[ImageLike]) -> list[np.ndarray]:
    """One image or a list of them (or an (N, H, W, C) array) -> a list of RGB uint8 arrays."""
    if isinstance(images, np.ndarray) and images.ndim == 4:
        return [to_rgb_uint8(im, f"image {i}") for i, im in enumerate(images)]
    if isinstance(images, (list, tuple)):
        if not images:
            raise ImageError("no images given")
        return [to_rgb_uint8(im, f"image {i}") for i, im in enumerate(images)]
    return [to_rgb_uint8(images)]


def resize_to(image: np.ndarray, height: int | None, width: int | None) -> np.ndarray:
    """Resize to (height, width); a None side keeps the image's own size."""
    h, w = image.shape[:2]
    height, width = height or h, width or w
    if (h, w) == (height, width):
        return image
    shrinking = height * width < h * w
    return cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)


def model_batch(images: Any, name: str = "images", single_allowed: bool = True) -> np.ndarray:
    """Images already in the model's input space -> float32 (N, H, W, C), checked for rank and finiteness.
    One image (H, W, C) becomes a batch of one where `single_allowed`."""
    if hasattr(images, "numpy") and not isinstance(images, np.ndarray):
        images = images.numpy()
    if isinstance(images, (list, tuple)):
        try:
            images = np.stack([np.asarray(im) for im in images])
        except ValueError as exc:
            raise ImageError(f"{name} could not be stacked into one batch: {exc}") from None
    if not isinstance(images, np.ndarray):
        raise TypeError(
            f"{name} must be a numpy array (N, height, width, channels) or one (height, width, channels), "
            f"not {type(images).__name__}; for files or PIL images use CAMExplorer, or load them first"
        )
    if not (np.issubdtype(images.dtype, np.number)) or np.issubdtype(images.dtype, np.complexfloating):
        raise ImageError(f"{name} has dtype {images.dtype}; expected numbers")
    if images.ndim == 3 and single_allowed:
        images = images[None]
    if images.ndim != 4:
        raise ImageError(
            f"{name} has shape {images.shape}; expected (N, height, width, channels) or one image "
            "(height, width, channels)"
        )
    if images.shape[0] == 0:
        raise ImageError(f"{name} is an empty batch")
    batch = images.astype(np.float32, copy=False)
    if not np.isfinite(batch).all():
        bad = int((~np.isfinite(batch)).sum())
        raise ImageError(f"{name} contain {bad} NaN or infinite value(s); every pixel must be a finite number")
    return batch
