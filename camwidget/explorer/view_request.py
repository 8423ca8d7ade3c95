"""What the explorer's controls ask for (:class:`ViewRequest`) and what answers it (:class:`ViewResult`).

A request is a plain value, made from the controls in one place and computed in one function,
:func:`compute_view`, in any thread (the session computes one view at a time). The controller hands requests
to the worker and results back to the screen; nothing here touches a widget.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NamedTuple

from camwidget.explorer import compare
from camwidget.explorer.check import MapCheck, check_view
from camwidget.explorer.compare import Cell, Question
from camwidget.methods import METHODS

if TYPE_CHECKING:
    from camwidget.explorer.session import ExplorerSession, View

# The View menu: each entry's grid kind (None: the overlay alone, or beside the picture and the heatmap).
MODES = {
    "Overlay": None,
    "Side by side": None,
    "Compare methods": "methods",
    "Compare layers": "layers",
    "Compare classes": "classes",
    "Check map": "check",
    "Concepts": "concepts",
}
PICTURE_ONLY_MODES = ("Check map", "Concepts")  # left out of the View menu for signals and clips (see modes_for)


class ViewRequest(NamedTuple):
    """The view the controls ask for."""

    image: int
    layer: str
    class_index: int | None  # None: the image's top class
    method: str
    score: str
    eigen_smooth: bool
    aug_smooth: bool
    mode: str = "Overlay"  # the View control's value
    versus: int | None = None  # a class comparison's class B (None: the runner-up)
    frame: int = 0  # a clip's frame shown (its map's slice)
    randomize: bool = False  # a Check view: run the randomisation check too (its button)

    @property
    def compare(self) -> str | None:
        """A Compare view's kind ("check" for Check map), else None."""
        return MODES[self.mode]

    def controls(self, shown_class: int) -> dict[str, Any]:
        """The view controls' values that ask for this request (its class as shown)."""
        return {
            "image": self.image,
            "layer": self.layer,
            "method": self.method,
            "class": shown_class,
            "score": self.score,
            "eigen-smooth": self.eigen_smooth,
            "aug-smooth": self.aug_smooth,
            "mode": self.mode,
            "versus": -1 if self.versus is None else self.versus,
            "frame": self.frame,
            "follow_top": self.class_index is None,
        }

    def doing(self) -> str:
        """What computing this request does, in words: the work the progress line names."""
        method = f"{METHODS[self.method].label} at {self.layer}"
        if self.compare == "check":
            return f"checking the {method} map" + (" (randomisation check)" if self.randomize else "")
        return f"computing {method}"


class ViewResult(NamedTuple):
    """A computed request: the map, and a Compare view's grid or a Check view's curves."""

    view: View
    cells: list[Cell] | None  # a Compare view's grid
    check: MapCheck | None = None  # a Check view's curves (and randomisation)


def modes_for(kind: str) -> list[str]:
    """The View menu's entries for an explorer of `kind` ("image", "signal", "volume"): the Check map's
    deletion and insertion curves blur a picture and the Concepts factorise a picture's grid, so signals and
    clips are not offered them."""
    return [mode for mode in MODES if kind == "image" or mode not in PICTURE_ONLY_MODES]


def compute_view(session: ExplorerSession, request: ViewRequest) -> ViewResult:
    """The map for `request`, with a Compare view's grid or a Check view's curves (any thread)."""
    view = session.view(
        request.image,
        request.layer,
        request.class_index,
        request.method,
        score=request.score,
        eigen_smooth=request.eigen_smooth,
        aug_smooth=request.aug_smooth,
        frame=request.frame,
    )
    if request.compare == "check":
        return ViewResult(view, None, check_view(session, request.image, view, request.randomize))
    if not request.compare:
        return ViewResult(view, None)
    if request.compare == "concepts":
        return ViewResult(view, compare.concept_cells(session, request.image, view))
    shown = (request.image, view.layer.path, view.class_index, request.method, request.score)
    question = Question(*shown, request.compare, versus=request.versus, frame=request.frame)
    return ViewResult(view, compare.cells_for(session, question))
