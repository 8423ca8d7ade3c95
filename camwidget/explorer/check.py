"""Is the map on screen right? Its deletion and insertion curves beside a random map's, and (on demand) the
cascading randomisation check: what the explorer's "Check map" view and ``explorer.check()`` show.

A faithful map's deletion curve falls faster (smaller area) and its insertion curve rises faster (larger area)
than a random map's; a map that explains the model changes when the model's top layers are re-initialised
(Spearman's rho falls). See :mod:`camwidget.metrics` for the definitions.
"""

from __future__ import annotations

import io
import textwrap
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from camwidget import metrics, progress, render
from camwidget.errors import CAMError
from camwidget.methods import METHODS
from camwidget.notes import titled

if TYPE_CHECKING:
    from camwidget.explorer.session import ExplorerSession, View

CHECK_STEPS = 50  # steps of each curve: 2 x 51 perturbed copies for the map, as many for the random map
RANDOMIZED_LAYERS = 4  # the explorer's randomisation check re-initialises this many top layers, one at a time


@dataclass(frozen=True)
class MapCheck:
    """One map's faithfulness numbers, and its randomisation check if it was run."""

    title: str
    deletion: metrics.Curve
    insertion: metrics.Curve
    random_deletion: metrics.Curve
    random_insertion: metrics.Curve
    randomization: metrics.Randomization | None
    pixels: np.ndarray  # the picture, for the randomisation row's overlays

    def figure(self, colormap: str = "jet", alpha: float = 0.5, width_px: int = 800) -> Figure:
        """Deletion and insertion curves (the map and a random map, areas in the legend); below them, when the
        randomisation check ran, the map before and after each step with its rho."""
        dpi = 100
        size = render.font_points(width_px, dpi)  # legible when the notebook shows the figure 470 px wide
        rows = 2 if self.randomization is not None else 1
        fig = Figure(figsize=(width_px / dpi, 3.0 * rows + 0.6), dpi=dpi)
        FigureCanvasAgg(fig)
        grid = fig.add_gridspec(rows, 2 if rows == 1 else max(2, 1 + len(self.randomization.steps)))
        span = grid.ncols // 2
        for column, (ours, random, label) in enumerate(
            (
                (self.deletion, self.random_deletion, "deletion (lower is better)"),
                (self.insertion, self.random_insertion, "insertion (higher is better)"),
            )
        ):
            ax = fig.add_subplot(grid[0, column * span : (column + 1) * span])
            ax.plot(ours.fractions, ours.scores[0], label=f"this map: area {ours.area:.3f}", color="C3")
            ax.plot(random.fractions, random.scores[0], label=f"random map: {random.area:.3f}", color="0.5", ls="--")
            ax.set_title(label, fontsize=size)
            ax.set_xlabel("share of pixels " + ("removed" if column == 0 else "put back"), fontsize=size)
            ax.set_ylabel("class probability", fontsize=size)
            ax.set_ylim(-0.02, 1.02)
            ax.tick_params(labelsize=size)
            ax.legend(fontsize=size, loc="upper right" if column == 0 else "lower right")
        if self.randomization is not None:
            r = self.randomization
            h, w = self.pixels.shape[:2]
            panels = [("before", r.before[0], None)] + [(s, m[0], rho[0]) for s, m, rho in zip(r.steps, r.maps, r.rho)]
            for column, (name, cam, rho) in enumerate(panels):
                ax = fig.add_subplot(grid[1, column])
                shown = render.blend(
                    self.pixels, render.colorize(render.upsample(cam, h, w), colormap), render.grid_alpha(alpha)
                )
                ax.imshow(shown)
                said = "model as given" if rho is None else f"+ {name.rsplit('/', 1)[-1]} random"
                title = "\n".join(textwrap.wrap(said, 14)) + ("" if rho is None else f"\nrho {rho:.2f}")
                ax.set_title(title, fontsize=size)
                ax.set_xticks([])
                ax.set_yticks([])
        fig.suptitle("\n".join(textwrap.wrap(self.title, int(width_px / (size * 0.75)))), fontsize=size + 1)
        fig.tight_layout()
        return fig

    def figure_png(self, colormap: str = "jet", alpha: float = 0.5, width_px: int = 800) -> bytes:
        buffer = io.BytesIO()
        self.figure(colormap, alpha, width_px).savefig(buffer, format="png")
        return buffer.getvalue()

    def _repr_png_(self) -> bytes:  # a notebook shows the figure when the check is a cell's last value
        return self.figure_png()


def check_map(
    model,
    x: np.ndarray,
    cam: np.ndarray,
    class_index: int,
    *,
    layer: str,
    method: str,
    output: int,
    title: str,
    pixels: np.ndarray,
    randomize: bool = False,
    steps: int = CHECK_STEPS,
    input=None,
    other_inputs=None,
    **cam_options,
) -> MapCheck:
    """The check of one map `cam` (h, w) of image `x` (1, H, W, C) for `class_index`; input, other_inputs for a
    model with several inputs, as compute_cam takes them."""
    if cam.ndim != 2 or x.ndim != 4:
        raise CAMError("the map check works on pictures (a 2-D map of an image model); this map is not one")
    steps = metrics._check_steps(steps)  # before any work
    random = np.random.default_rng(0).random(cam.shape).astype(np.float32)
    jobs = [(m, kind) for m in (cam, random) for kind in (metrics.deletion, metrics.insertion)]
    curves = []
    for number, (m, kind) in enumerate(jobs, 1):
        with progress.stage(number, len(jobs), "deletion and insertion curves: curve"):
            curves.append(
                kind(
                    model,
                    x,
                    m[None],
                    class_index=class_index,
                    steps=steps,
                    output=output,
                    input=input,
                    other_inputs=other_inputs,
                )
            )
    randomization = None
    if randomize:
        randomization = metrics.model_randomization(
            model,
            x,
            layer=layer,
            method=method,
            class_index=class_index,
            steps=RANDOMIZED_LAYERS,
            output=output,
            input=input,
            other_inputs=other_inputs,
            **cam_options,
        )
    return MapCheck(title, curves[0], curves[1], curves[2], curves[3], randomization, pixels)


def check_view(session: ExplorerSession, image: int, view: View, randomize: bool) -> MapCheck:
    """The check of the map an explorer shows (`view` of picture `image`), with the picture's other inputs as
    the view had them.

    Raises:
        CAMError: the explorer shows signals or clips, or explains a target rather than a class.
    """
    if session.kind != "image":
        raise CAMError(f"the map check works on pictures; this explorer shows {session.kind}s")
    if not session.explainer.explains_class:
        raise CAMError("the map check scores a class's probability; this explorer explains a target")
    feed = session.explainer.feed  # several inputs: the others' values go with the picture, as in the view
    fed = {} if feed is None else {"input": feed.index, "other_inputs": dict(zip(feed.other_names, feed.others))}
    label = METHODS[view.method].label
    return check_map(
        session.explainer.model,
        session.model_input(image),
        view.cam,
        view.class_index,
        layer=view.layer.path,
        method=view.method,
        output=session.output,
        randomize=randomize,
        pixels=session.display_pixels(image),
        **fed,
        title=titled(
            f"{session.names[image]}: {label} of {session.class_names[view.class_index]} at {view.layer.path}",
            session.model_note,
        ),
    )
