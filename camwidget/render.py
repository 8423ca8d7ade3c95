"""Maps to pictures: upsample, colour, blend at the image's own size; PNG bytes for the widget.

Only matplotlib's object API is used (Figure + Agg canvas, colormap tables): never pyplot, never the
user's backend. The overlay itself is blended in numpy with matplotlib's colormap, because it is redrawn on
every slider move and a figure redraw costs ten times more; the heatmap panel with its colorbar is a figure.
"""

from __future__ import annotations

import functools
import io

import cv2
import matplotlib
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from camwidget.errors import CAMError, closest, quoted

COLORMAPS = ("jet", "turbo", "viridis", "inferno", "magma", "plasma", "hot", "coolwarm", "gray")


NARROW_OUTPUT_PX = 470  # a notebook cell's output at 900 px with JupyterLab's file browser open
LEGIBLE_PX = 9  # the smallest text height that stays legible on screen


def font_points(width_px: int, dpi: int = 100) -> float:
    """The font size (points) for a figure `width_px` wide that stays legible when the notebook shrinks it
    to NARROW_OUTPUT_PX: pt = LEGIBLE_PX * max(1, width_px / NARROW_OUTPUT_PX) * 72 / dpi, at least 7 pt."""
    return max(7.0, LEGIBLE_PX * max(1.0, width_px / NARROW_OUTPUT_PX) * 72 / dpi)


GRID_MIN_ALPHA = 0.5  # a grid of maps (Compare, Check) is drawn at least this opaque


def grid_alpha(alpha: float) -> float:
    """The opacity of a grid of maps: the explorer's, but at least GRID_MIN_ALPHA, so that moving the main
    Opacity to 0 (to look at the picture) does not turn a grid of six maps into six plain photos."""
    return max(float(alpha), GRID_MIN_ALPHA)


@functools.lru_cache(maxsize=32)
def colormap_table(name: str) -> np.ndarray:
    """(256, 3) uint8 colours of a matplotlib colormap."""
    try:
        cmap = matplotlib.colormaps[name]
    except (KeyError, TypeError, ValueError):
        hint = closest(str(name), list(matplotlib.colormaps))
        raise CAMError(
            f"colormap {name!r} is not a matplotlib colormap"
            + (f"; did you mean {quoted(hint)}?" if hint else ".")
            + f" Common ones: {quoted(COLORMAPS, limit=len(COLORMAPS))}"
        ) from None
    return np.round(cmap(np.linspace(0.0, 1.0, 256))[:, :3] * 255).astype(np.uint8)


def upsample(cam: np.ndarray, height: int, width: int) -> np.ndarray:
    """(h, w) map in [0, 1] -> (height, width), bilinear, kept in [0, 1]."""
    up = cv2.resize(np.ascontiguousarray(cam, np.float32), (width, height), interpolation=cv2.INTER_LINEAR)
    return np.clip(up, 0.0, 1.0)


def colormap_indices(cam: np.ndarray) -> np.ndarray:
    """(H, W) map in [0, 1] -> (H, W) uint8 rows of a colormap table."""
    return np.rint(cam * 255).astype(np.uint8)


def colorize(cam: np.ndarray, colormap: str) -> np.ndarray:
    """(H, W) map in [0, 1] -> (H, W, 3) uint8 through the colormap."""
    return colormap_table(colormap)[colormap_indices(cam)]


def blend(image: np.ndarray, heat: np.ndarray, alpha: float) -> np.ndarray:
    """(1 - alpha) * image + alpha * heat, uint8; alpha in [0, 1]."""
    if not 0.0 <= alpha <= 1.0:
        raise CAMError(f"alpha (the overlay's opacity) must be between 0 and 1, not {alpha}")
    return cv2.addWeighted(heat, float(alpha), image, 1.0 - float(alpha), 0.0)


def overlay(image: np.ndarray, cam: np.ndarray, alpha: float = 0.5, colormap: str = "jet") -> np.ndarray:
    """The CAM drawn over the image at the image's own size.

    Args:
        image: (H, W, 3) uint8 RGB.
        cam: a map (h, w) in [0, 1] at any resolution; resized bilinearly to (H, W).
        alpha: the map's opacity, 0 (the picture alone) to 1 (the map alone): alpha * heat + (1 - alpha) * image.
        colormap: any of matplotlib's colormaps.

    Returns:
        (H, W, 3) uint8 RGB.
    """
    heat = colorize(upsample(cam, image.shape[0], image.shape[1]), colormap)
    return blend(image, heat, alpha)


def png_bytes(rgb: np.ndarray) -> bytes:
    """PNG of an RGB uint8 image, encoded fast since it is redrawn while a slider moves: Huffman coding only
    (no match search) is 1.3-1.8x faster than zlib level 1 on overlays and as small or smaller (a photo's
    overlay: 5.3 ms and 179 KB against 7.0 ms and 202 KB; noise: 2.1 against 3.6 ms at 224x224)."""
    params = [cv2.IMWRITE_PNG_COMPRESSION, 1, cv2.IMWRITE_PNG_STRATEGY, cv2.IMWRITE_PNG_STRATEGY_HUFFMAN_ONLY]
    ok, data = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), params)
    if not ok:
        raise CAMError("could not encode the picture as PNG")
    return data.tobytes()


LOSSLESS_PIXELS = 512 * 512  # pictures shown up to this size go as PNG (exact); larger ones as JPEG (fast)


def display_bytes(rgb: np.ndarray) -> tuple[str, bytes]:
    """(format, bytes) for the screen: PNG for small pictures, so they show exactly; JPEG at quality 90 for
    larger ones, which a PNG encoder takes ten times longer over (44 ms against 4 ms at 1024x768 noise)."""
    if rgb.shape[0] * rgb.shape[1] <= LOSSLESS_PIXELS:
        return "png", png_bytes(rgb)
    ok, data = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 90])
    if not ok:
        raise CAMError("could not encode the picture as JPEG")
    return "jpeg", data.tobytes()


def heatmap_figure_png(cam: np.ndarray, colormap: str, title: str, width_px: int = 320) -> bytes:
    """The map alone at its own resolution, with a colorbar; a matplotlib Figure, off screen."""
    h, w = cam.shape
    dpi = 100
    strip = h * 8 < w  # a signal's (1, l) map: drawn as a band, not one pixel tall
    aspect_height = 0.25 if strip else h / w
    fig = Figure(figsize=(width_px / dpi, width_px / dpi * aspect_height * 0.9 + 0.4), dpi=dpi)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    im = ax.imshow(cam, cmap=colormap, vmin=0.0, vmax=1.0, interpolation="nearest", aspect="auto" if strip else None)
    ax.set_title(title, fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()


@functools.lru_cache(maxsize=16)
def colorbar_png(colormap: str, height_px: int, width_px: int = 64) -> bytes:
    """A vertical colorbar, 0 (bottom) to 1 (top), `height_px` tall: the overlay's key."""
    dpi = 100
    fig = Figure(figsize=(width_px / dpi, max(height_px, 60) / dpi), dpi=dpi)
    FigureCanvasAgg(fig)
    ax = fig.add_axes((0.08, 0.04, 0.28, 0.92))
    table = colormap_table(colormap)[::-1, None, :]
    ax.imshow(np.repeat(table, 8, axis=1), aspect="auto", extent=(0, 1, 0, 1))
    ax.set_xticks([])
    ax.yaxis.tick_right()
    ax.set_yticks([0.0, 0.5, 1.0])
    ax.tick_params(labelsize=7, length=2, pad=1)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()
