"""Where a map's mass lies, on a common grid: named regions of a picture, and the pixels a class shares.

Every map and picture of an audit is kept downsampled to a side x side grid (16 x 16 by default), so regions
are the same cells for every picture whatever its size:

- ``centre``: the middle half of each side (a quarter of the area: an even map puts 0.25 there);
- ``top``/``bottom``/``left``/``right`` ``border``: a band of one eighth of the side along each edge, and
  ``border`` their union (44% of the area);
- the four ``corner`` squares, a quarter of the side each (1/16 of the area each).

A map M_i >= 0 is normalised to mass 1 (M_i / sum M_i); its share in region R is sum over R of M_i.

Pixels that a class shares (what a shortcut looks like, Lapuschkin et al. 2019): for class c with pictures P_i
(side x side x 3, values 0..1), the class median m_c(x) per cell, and the share of the class's pictures that
show it there, q_c(x) = mean_i [ ||P_i(x) - m_c(x)|| < delta ] (delta = 0.05, the RMS over the channels).
A cell is the class's own when almost every picture shows the same thing there and other classes show
something else: s_c(x) = clip((q_c(x) - 0.5) / 0.3, 0, 1) * clip(||m_c(x) - m_rest(x)|| / 0.15, 0, 1), the
second factor 1 when no other class is given. A watermark, a frame or a background colour carried by one
class has s_c ~ 1 on its cells; an object that moves from picture to picture has s_c ~ 0.
"""

from __future__ import annotations

import numpy as np

SAME = 0.05  # delta: RMS distance (0..1 pixel values) under which two cells show the same thing
SHARED_FROM, SHARED_SPAN = 0.5, 0.3  # q_c -> 0 at or below half the class, 1 at 80% of it
APART = 0.15  # RMS distance between class medians at which a cell is wholly the class's own

CORNERS = ("top-left corner", "top-right corner", "bottom-left corner", "bottom-right corner")
BORDERS = ("top border", "bottom border", "left border", "right border")


def regions(side: int) -> dict[str, np.ndarray]:
    """The named regions of a side x side grid as boolean masks (see the module's docstring)."""
    band = max(1, side // 8)
    corner = max(1, side // 4)
    centre = np.zeros((side, side), bool)
    quarter = side // 4
    centre[quarter : side - quarter, quarter : side - quarter] = True
    found: dict[str, np.ndarray] = {"centre": centre}
    for name, rows, cols in (
        ("top border", slice(0, band), slice(None)),
        ("bottom border", slice(side - band, side), slice(None)),
        ("left border", slice(None), slice(0, band)),
        ("right border", slice(None), slice(side - band, side)),
        ("top-left corner", slice(0, corner), slice(0, corner)),
        ("top-right corner", slice(0, corner), slice(side - corner, side)),
        ("bottom-left corner", slice(side - corner, side), slice(0, corner)),
        ("bottom-right corner", slice(side - corner, side), slice(side - corner, side)),
    ):
        mask = np.zeros((side, side), bool)
        mask[rows, cols] = True
        found[name] = mask
    found["border"] = np.logical_or.reduce([found[b] for b in BORDERS])
    return found


def mass(maps: np.ndarray) -> np.ndarray:
    """Maps (n, side, side) >= 0 each divided by its sum: mass 1 (an all-zero map stays zero)."""
    maps = np.maximum(np.asarray(maps, np.float32), 0.0)
    total = maps.sum(axis=(-2, -1), keepdims=True)
    return np.divide(maps, total, out=np.zeros_like(maps), where=total > 0)


def region_shares(masses: np.ndarray) -> dict[str, np.ndarray]:
    """Each region's share of each map's mass: name -> (n,), for maps already of mass 1."""
    side = masses.shape[-1]
    return {name: masses[:, region].sum(axis=1) for name, region in regions(side).items()}


def mask_share(masses: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """Share of each map's mass inside its object mask (the energy-based pointing game, Wang et al. 2020,
    Score-CAM): sum over the mask of M_i, for maps of mass 1 and masks (n, side, side) in 0..1."""
    return (masses * masks).sum(axis=(1, 2))


def shared_pixels(own: np.ndarray, others: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """(s_c (side, side) in 0..1, the class median m_c (side, side, 3)) for a class's pictures `own`
    (n, side, side, 3, values 0..1) against the other classes' pictures (or None): see the module docstring."""
    median = np.median(own, axis=0)
    close = np.sqrt(((own - median) ** 2).mean(axis=-1)) < SAME
    shared = np.clip((close.mean(axis=0) - SHARED_FROM) / SHARED_SPAN, 0.0, 1.0)
    if others is None or len(others) == 0:
        return shared.astype(np.float32), median
    apart = np.sqrt(((median - np.median(others, axis=0)) ** 2).mean(axis=-1))
    return (shared * np.clip(apart / APART, 0.0, 1.0)).astype(np.float32), median


def on_shared(
    masses: np.ndarray, pixels: np.ndarray, shared: np.ndarray, median: np.ndarray, radius: int = 0
) -> np.ndarray:
    """Each picture's map mass per cell on its class's shared pixels where the picture itself shows them, widened
    by `radius` cells (:func:`spread`): M_i(x) spread(s_c [||P_i - m_c|| < delta], r)(x), (n, side, side); its
    sum over x is the picture's suspicion, 0..1."""
    shows = np.sqrt(((pixels - median) ** 2).mean(axis=-1)) < SAME
    return masses * spread(shared * shows, radius)


def spread(cells: np.ndarray, radius: int) -> np.ndarray:
    """`cells` (..., side, side) dilated by `radius` cells (a maximum over a (2r+1)^2 square): a map is only as
    sharp as its layer, whose cell covers side / h cells of the grid, so a map about a 4-cell watermark spreads
    over its neighbours; the suspect region is widened by one layer cell to take that mass in."""
    if radius <= 0:
        return cells
    from scipy.ndimage import maximum_filter

    size = [1] * (cells.ndim - 2) + [2 * radius + 1] * 2
    return maximum_filter(cells, size=size, mode="nearest")


def name_region(weights: np.ndarray, shared: np.ndarray | None = None) -> str:
    """Words for where `weights` (side x side >= 0: a map's mass, or that mass on shared pixels) lies: a corner
    holding 60% of it; the background, where the shared cells cover 40% of the picture and half its centre;
    one border or the whole frame, where the border band holds 60%; else the rows and columns of its box."""
    side = weights.shape[-1]
    total = float(weights.sum())
    if total <= 0:
        return "nowhere (an empty map)"
    named = regions(side)
    share = {name: float(weights[region].sum()) / total for name, region in named.items()}
    corner = max(CORNERS, key=lambda c: share[c])
    if share[corner] >= 0.6:
        return f"the {corner}"
    if shared is not None:
        cells = shared > 0.5
        if cells.mean() >= 0.4 and cells[named["centre"]].mean() >= 0.5:
            return f"the background (the same in almost every picture over {cells.mean():.0%} of it)"
    if share["border"] >= 0.6:
        sides = [b for b in BORDERS if share[b] >= 0.1]
        return "the border all round (a frame)" if len(sides) >= 3 else " and ".join(f"the {b}" for b in sides)
    rows, cols = np.nonzero(weights >= 0.5 * weights.max())
    return (
        f"rows {rows.min() / side:.0%}-{(rows.max() + 1) / side:.0%} and columns "
        f"{cols.min() / side:.0%}-{(cols.max() + 1) / side:.0%} of the picture"
    )
