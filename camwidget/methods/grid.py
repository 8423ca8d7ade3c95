"""A layer's capture as the grid the methods read, and their maps back on the layer's own positions."""

from __future__ import annotations

import dataclasses

import numpy as np

from camwidget.engines import LayerCapture, MapGeometry


def as_grid(capture: LayerCapture, geometry: MapGeometry) -> LayerCapture:
    """A capture (N, *positions, K) as the (N, a, b, K) grid the methods read: tokens without their leading
    ones, on their (h, w) patch grid; a signal (N, L, K) as (N, L, 1, K); a volume (N, D, H, W, K) as
    (N, D*H, W, K). Every method sums or averages over the positions, so the grid's layout does not change
    their values."""

    def view(x: np.ndarray) -> np.ndarray:
        n, k = x.shape[0], x.shape[-1]
        if geometry.kind == "tokens":
            return x[:, geometry.leading :].reshape(n, *geometry.grid, k)
        if geometry.kind == "signal":
            return x[:, :, None, :]
        if geometry.kind == "volume":
            return x.reshape(n, x.shape[1] * x.shape[2], x.shape[3], k)
        return x

    return dataclasses.replace(capture, activations=view(capture.activations), gradients=view(capture.gradients))


def from_grid(maps: np.ndarray, geometry: MapGeometry, positions: tuple[int, ...]) -> np.ndarray:
    """Maps on the methods' grid (N, a, b) -> (N, *positions), the layer's own positions (tokens: the
    patch grid)."""
    if geometry.kind == "signal":
        return maps[:, :, 0]
    if geometry.kind == "volume":
        return maps.reshape(maps.shape[0], *positions)
    return maps
