"""Localisation metrics: the pointing game (Zhang et al. 2016) and the energy-based pointing game (Wang et al.
2020): does the map's peak, or its mass, fall in the region a person marked?"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import cv2
import numpy as np

from camwidget.errors import CAMError
from camwidget.inputs.images import model_batch
from camwidget.metrics.common import _check_int, _checked_maps, _resize


def region_mask(region: Any, shape: tuple[int, int]) -> np.ndarray:
    """A region as a mask.

    Args:
        region: a box (top, left, bottom, right) in pixels, bottom and right exclusive, or a mask of `shape`.
        shape: the images' (height, width).

    Returns:
        bool (H, W).

    Raises:
        CAMError: a box that is not one (bottom <= top, not finite) or a mask of another shape.
    """
    array = np.asarray(region)
    if array.shape == (4,):
        numbers = np.issubdtype(array.dtype, np.number) and not np.issubdtype(array.dtype, np.complexfloating)
        if not numbers or not np.isfinite(array).all() or array[2] <= max(array[0], 0) or array[3] <= max(array[1], 0):
            raise CAMError(
                f"the box {tuple(array.tolist())} is not one: give (top, left, bottom, right) in pixels, finite, with "
                "bottom > top and right > left (bottom and right exclusive; the box inside the image)"
            )
        top, left, bottom, right = (int(v) for v in array)
        mask = np.zeros(shape, bool)
        mask[max(top, 0) : bottom, max(left, 0) : right] = True
        return mask
    if array.shape != tuple(shape):
        raise CAMError(
            f"the region has shape {array.shape}; give a box (top, left, bottom, right) or a mask of the images' "
            f"(height, width) {tuple(shape)}"
        )
    return array.astype(bool)


def _maps_and_masks(images: Any, maps: Any, regions: Sequence[Any]) -> list[tuple[np.ndarray, np.ndarray]]:
    """(map at the images' size, region mask) per image, checked."""
    batch = model_batch(images)
    maps = _checked_maps(maps, batch)
    if len(regions) != len(batch):
        raise CAMError(f"{len(regions)} regions for {len(batch)} images; give one box or mask per image")
    size = batch.shape[1:3]
    return [(_resize(m, *size), region_mask(region, size)) for m, region in zip(maps, regions)]


def pointing_game(images: Any, maps: Any, regions: Sequence[Any], tolerance: int = 15) -> np.ndarray:
    """The pointing game (Zhang et al. 2016): does each map's peak fall on its region?

    Args:
        images: (N, H, W, C) or one (H, W, C): their size is the maps' size for the game.
        maps: (N, h, w) at any resolution, resized bilinearly to the images.
        regions: one box (top, left, bottom, right) or mask (H, W) per image (see :func:`region_mask`).
        tolerance: a hit within this many pixels of the region counts (Zhang et al. use 15).

    Returns:
        (N,) bool, a hit per image.

    Raises:
        CAMError: regions not one per image, or a region that is not one.
    """
    tolerance = _check_int(tolerance, "tolerance", 0)
    hits = []
    for full, mask in _maps_and_masks(images, maps, regions):
        if tolerance > 0:
            kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * tolerance + 1, 2 * tolerance + 1))
            mask = cv2.dilate(mask.astype(np.uint8), kernel).astype(bool)
        hits.append(bool(mask[np.unravel_index(int(np.argmax(full)), full.shape)]))
    return np.array(hits)


def energy_pointing_game(images: Any, maps: Any, regions: Sequence[Any]) -> np.ndarray:
    """The energy-based pointing game (Score-CAM, Wang et al. 2020): each map's share of its mass in its region.

    Args:
        images, maps, regions: as :func:`pointing_game`.

    Returns:
        (N,) float in [0, 1]: sum of ReLU(map) inside the region over its sum everywhere (0 for an empty map).

    Raises:
        CAMError: as :func:`pointing_game`.
    """
    shares = []
    for full, mask in _maps_and_masks(images, maps, regions):
        positive = np.maximum(full, 0)
        total = positive.sum()
        shares.append(float(positive[mask].sum() / total) if total > 0 else 0.0)
    return np.array(shares)
