"""Compare at a glance: one image's maps side by side, by method, by layer (a depth strip) or by class.

"Why A rather than B" is the Grad-CAM of the score difference y_A - y_B. Grad-CAM is linear in the
gradient (w_k = mean(d y / d A_k), map = sum_k w_k A_k), so that map is the difference of the two classes'
maps before ReLU: ReLU(M_A - M_B), scaled to [0, 1]. It is built from the two maps already computed.
"""

from __future__ import annotations

import io
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from camwidget import progress, render
from camwidget.dff import concepts
from camwidget.errors import CAMError
from camwidget.methods import METHODS, get_method, normalize_maps
from camwidget.notes import titled
from camwidget.targets import check_class_index

if TYPE_CHECKING:
    from camwidget.explorer.session import ExplorerSession, View

KINDS = ("methods", "layers", "classes")
# Every method that works from the one capture the view already has (Score-CAM runs the model per channel,
# CAM needs a GAP + Dense head, Guided Grad-CAM a second backward pass: asked for by name only).
DEFAULT_METHODS = ("gradcam", "gradcam++", "hirescam", "xgradcam", "layercam", "eigencam")
DEPTH_STRIP = 6  # layers in a depth strip
CONCEPTS = 4  # concepts the Concepts view factorises the picture's layer into
CONCEPT_CLASSES = 5  # the picture's top classes whose evidence each concept is weighed by


@dataclass(frozen=True)
class Cell:
    title: str
    cam: np.ndarray  # (h, w) float32 in [0, 1]


@dataclass(frozen=True)
class Question:
    """What to compare: the view as the explorer shows it, and the kind of grid."""

    image: int
    layer: str
    class_index: int | None
    method: str
    score: str = "auto"
    kind: str = "methods"
    methods: tuple[str, ...] | None = None
    layers: tuple[str, ...] | None = None
    versus: int | None = None
    frame: int = 0  # a clip's frame: the maps are that frame's slices


def check_kind(kind: str) -> str:
    if kind not in KINDS:
        raise CAMError(f"compare kind must be one of {', '.join(map(repr, KINDS))}, not {kind!r}")
    return kind


def depth_strip(paths: Sequence[str], current: str, count: int = DEPTH_STRIP) -> list[str]:
    """`count` spatial layers from the first to the last, evenly spaced, always with `current`."""
    if len(paths) <= count:
        return list(paths)
    picked = {round(i * (len(paths) - 1) / (count - 1)) for i in range(count)}
    if current in paths and paths.index(current) not in picked:
        nearest = min(picked - {0, len(paths) - 1}, key=lambda i: abs(i - paths.index(current)), default=None)
        picked.discard(nearest)
        picked.add(paths.index(current))
    return [paths[i] for i in sorted(picked)]


def runner_up(probabilities: np.ndarray, class_index: int) -> int:
    """The best-scoring class other than `class_index`: the default B of "why A rather than B"."""
    order = [int(i) for i in np.argsort(-probabilities) if int(i) != class_index]
    return order[0] if order else class_index


def contrast(raw_a: np.ndarray, raw_b: np.ndarray) -> np.ndarray:
    """Grad-CAM of y_A - y_B from the two Grad-CAM maps before ReLU (see the module docstring)."""
    return normalize_maps((raw_a - raw_b)[None])[0]


def cells_for(session: ExplorerSession, question: Question) -> list[Cell]:
    """The grid's maps, each computed (or taken from the session's caches) for `question`'s image."""
    q = question
    check_kind(q.kind)
    names = session.class_names

    count = {"done": 0, "total": 4}

    def view(layer: str, class_index: int | None, method: str):  # noqa: ANN202
        progress.step(count["done"], count["total"], "maps of the grid")
        count["done"] += 1
        return session.view(q.image, layer, class_index, method, score=q.score, frame=q.frame)

    if q.kind == "methods":
        methods = [get_method(m).name for m in (q.methods or DEFAULT_METHODS)]
        count["total"] = len(methods)
        return [Cell(METHODS[m].label, view(q.layer, q.class_index, m).cam) for m in methods]
    if q.kind == "layers":
        layout = session.layout(q.image)
        paths = [layout.resolve(p).path for p in q.layers] if q.layers else depth_strip(layout.spatial_paths(), q.layer)
        count["total"] = len(paths)
        cells = []
        for path in paths:
            shown = view(path, q.class_index, q.method)
            h, w = shown.cam.shape
            cells.append(Cell(f"{path} ({h}×{w})", shown.cam))
        return cells
    if session.n_classes < 2:
        raise CAMError(
            "comparing classes needs two of them; this explorer explains one score"
            + (" (a target)" if not session.explainer.explains_class else "")
        )
    count["total"] = 2 if q.method == "gradcam" else 4
    a = view(q.layer, q.class_index, "gradcam")
    b_index = runner_up(a.probabilities, a.class_index) if q.versus is None else q.versus
    b_index = check_class_index(b_index, session.n_classes, "versus")
    b = view(q.layer, b_index, "gradcam")
    label = METHODS[get_method(q.method).name].label
    shown_a = a if q.method == "gradcam" else view(q.layer, a.class_index, q.method)
    shown_b = b if q.method == "gradcam" else view(q.layer, b_index, q.method)
    name_a, name_b = names[a.class_index], names[b_index]
    return [
        Cell(f"{name_a} ({label})", shown_a.cam),
        Cell(f"{name_b} ({label})", shown_b.cam),
        Cell(f"why {name_a} rather than {name_b}\n(Grad-CAM of the score difference)", contrast(a.raw, b.raw)),
    ]


def concept_cells(session: ExplorerSession, image: int, view: View) -> list[Cell]:
    """The Concepts view: Deep Feature Factorization (:func:`camwidget.concepts`) of the shown layer's
    activations for this picture into CONCEPTS concepts, one cell each: where the concept lies (scaled by its
    peak), titled with the classes among the picture's top CONCEPT_CLASSES that it raises most.

    Raises:
        CAMError: the explorer explains a target, or the model takes several inputs (concepts are of a class
            model with one input).
    """
    if not session.explainer.explains_class or session.explainer.feed is not None:
        raise CAMError(
            "the Concepts view factorises a layer of a class model with one input; this explorer's "
            "model " + ("explains a target" if not session.explainer.explains_class else "takes several inputs")
        )
    channels = view.layer.shape[-1] or CONCEPTS
    top = [int(c) for c in np.argsort(-view.probabilities)[:CONCEPT_CLASSES]]
    found = concepts(
        session.explainer.model,
        session.model_input(image),
        min(CONCEPTS, int(channels)),
        view.layer.path,
        classes=top,
        class_names=session.class_names,
    )
    maps = found.normalised_maps()[0]
    cells = []
    for j in range(found.n):
        raised = ", ".join(name for _, name, _ in found.top_classes[j][:2]) or "raises none of the top classes"
        cells.append(Cell(f"concept {j + 1}: {raised}", maps[j]))
    return cells


def figure_for(
    session: ExplorerSession, question: Question, colormap: str, alpha: float, width_px: int = 860
) -> Figure:
    """The figure that answers `question` on the explorer's picture, titled with its name, the kind, and the
    model's note (a random-weights stand-in says so in every figure)."""
    cells = cells_for(session, question)
    title = titled(f"{session.names[question.image]}: compare {question.kind}", session.model_note)
    pixels = session.display_pixels(question.image, question.frame)
    return figure(pixels, cells, colormap, alpha, title, width_px=width_px)


def figure(
    pixels: np.ndarray,
    cells: Sequence[Cell],
    colormap: str,
    alpha: float,
    title: str = "",
    width_px: int = 860,
    columns: int = 3,
) -> Figure:
    """The cells as overlays on `pixels`, labelled, in rows of `columns`, with one colorbar; an off-screen
    matplotlib Figure `width_px` wide (860: fits a 900 px notebook cell). The maps are blended at
    ``render.grid_alpha(alpha)``: at least half opaque, whatever the main Opacity says."""
    alpha = render.grid_alpha(alpha)
    size = render.font_points(width_px)  # legible when the notebook shows the figure 470 px wide
    columns = min(columns, len(cells))
    rows = -(-len(cells) // columns)
    h, w = pixels.shape[:2]
    dpi = 100
    cell_w = (width_px / dpi - 0.7) / columns
    fig = Figure(figsize=(width_px / dpi, rows * (cell_w * h / w + 0.45) + (0.3 if title else 0.1)), dpi=dpi)
    FigureCanvasAgg(fig)
    grid = fig.add_gridspec(rows, columns + 1, width_ratios=[1] * columns + [0.06])
    for i, cell in enumerate(cells):
        ax = fig.add_subplot(grid[i // columns, i % columns])
        up = render.upsample(cell.cam, h, w)
        ax.imshow(render.blend(pixels, render.colorize(up, colormap), alpha))
        ax.set_title(_fit_title(cell.title, cell_w, size), fontsize=size)
        ax.set_xticks([])
        ax.set_yticks([])
    bar = fig.add_subplot(grid[:, columns])
    fig.colorbar(_scalar_mappable(colormap), cax=bar).ax.tick_params(labelsize=size)
    if title:
        fig.suptitle(title, fontsize=size + 1)
    fig.tight_layout()
    return fig


def _fit_title(title: str, width_inches: float, fontsize: float = 8) -> str:
    """Wrapped to the cell's width (about 0.55 em per character), at most three lines, never cut mid-word
    without an ellipsis."""
    chars = max(8, int(width_inches * 72 / (fontsize * 0.55)))
    lines = [line for part in title.split("\n") for line in textwrap.wrap(part, chars) or [""]]
    if len(lines) > 3:
        lines = lines[:3]
        lines[2] = lines[2][: chars - 1] + "…"
    return "\n".join(line if len(line) <= chars else line[: chars - 1] + "…" for line in lines)


def figure_png(fig: Figure) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()


def _scalar_mappable(colormap: str):  # noqa: ANN202
    from matplotlib import colormaps
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize

    return ScalarMappable(Normalize(0.0, 1.0), colormaps[colormap])
