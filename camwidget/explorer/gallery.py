"""Many pictures in the notebook: :class:`Gallery` shows their overlays as thumbnails, sortable; a click opens
that picture in a :class:`~camwidget.explorer.widget.CAMExplorer` below."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import ipywidgets as widgets
import numpy as np

from camwidget import notes, render
from camwidget.engines import engine_for
from camwidget.errors import CAMError
from camwidget.pipeline.batch import Explained, explain_many, find_pictures
from camwidget.pipeline.outputs import html_text

SORTS = {
    "confidence, high first": lambda item: -item.top[0][2],
    "confidence, low first": lambda item: item.top[0][2],
    "class": lambda item: item.top[0][1],
    "share in the centre, low first": lambda item: item.stats["centre_share"],
    "share in the centre, high first": lambda item: -item.stats["centre_share"],
    "order given": lambda item: item.index,
}
THUMBNAIL = 150
# explain_many's options that the explorer takes too: a picture opened from the gallery is explained as its
# thumbnail was (same layer, method, class, target, output, score, overlay look)
_EXPLORER_OPTIONS = ("layer", "method", "class_index", "target", "output", "score", "max_side", "alpha", "colormap")


class Gallery(widgets.VBox):
    """Thumbnails of many pictures' overlays (explained by :func:`camwidget.pipeline.batch.explain_many`, which takes the
    same arguments), a Sort menu, and a click that opens the picture in an explorer below.

    ``.items`` are the results (:class:`~camwidget.pipeline.batch.Explained`), in the order shown; ``.explorer`` is the
    explorer opened last (None before a click); ``.explore(i)`` opens item i from code.

    Args:
        model: any Keras 3 model.
        images: as :func:`camwidget.pipeline.batch.explain_many` takes them.
        columns: thumbnails per row.
        sort: the first order, one of the Sort menu's entries.
        class_names: the classes' names.
        preprocess: as explain_many takes it.
        **options: explain_many's other options (layer, method, class_index, target, ...).

    Raises:
        CAMError: a sort that is not on the menu, or an option explain_many refuses.
    """

    def __init__(
        self,
        model: Any,
        images: Any,
        *,
        columns: int = 4,
        sort: str = "confidence, high first",
        class_names: Sequence[str] | None = None,
        preprocess: Any = None,
        **options: Any,
    ) -> None:
        if sort not in SORTS:
            raise CAMError(f"sort must be one of {', '.join(map(repr, SORTS))}, not {sort!r}")
        self._model, self._class_names, self._preprocess, self._options = model, class_names, preprocess, options
        self._images = images
        self._pictures = find_pictures(images)  # found once: the thumbnails and the explorer read the same
        self._sources = {p.key: p.source for p in self._pictures}
        self._explain()
        self.explorer = None
        self._sort = widgets.Dropdown(
            description="Sort", options=list(SORTS), value=sort, layout=widgets.Layout(width="320px")
        )
        self._grid = widgets.GridBox(
            layout=widgets.Layout(grid_template_columns=f"repeat({columns}, {THUMBNAIL + 10}px)")
        )
        self._status = widgets.HTML()
        self._below = widgets.VBox()
        self._sort.observe(lambda _: self._arrange(), names="value")
        self._arrange()
        super().__init__([self._sort, self._grid, self._status, self._below])
        self.add_class("camwidget-gallery")

    def _explain(self) -> None:
        """Explain every picture, for the model as it is now."""
        engine = engine_for(self._model)
        self._state = engine.sync()
        results = list(
            explain_many(
                self._model,
                self._pictures,
                overlays=True,
                class_names=self._class_names,
                preprocess=self._preprocess,
                **self._options,
            )
        )
        self.skipped = [item for item in results if item.error is not None]
        self.items: list[Explained] = [item for item in results if item.error is None]
        if not self.items:
            raise CAMError("no picture could be explained: " + "; ".join(f"{i.name}: {i.error}" for i in self.skipped))

    def refresh(self) -> bool:
        """Explain every picture again if the model changed since (fit, set_weights, an edited layer); True if
        it had. Sorting and opening a picture do this first, so the thumbnails never show an older model."""
        if engine_for(self._model).sync() == self._state:
            return False
        self._explain()
        return True

    def _arrange(self) -> None:
        changed = self.refresh()
        self.items.sort(key=SORTS[self._sort.value])
        self._grid.children = [self._card(k, item) for k, item in enumerate(self.items)]
        note = f"{len(self.items)} pictures" + (
            f"; skipped {len(self.skipped)}: " + ", ".join(f"{i.name} ({i.error})" for i in self.skipped)
            if self.skipped
            else ""
        )
        again = "The model changed since the thumbnails were made: they were made again. " if changed else ""
        model_note = notes.note_of(self._model)  # a random-weights stand-in says so here too
        said = f"{model_note[0].upper()}{model_note[1:]}. " if model_note else ""
        self.status_text = said + again + note + ". Click a picture to explore it."
        self._status.value = html_text(self.status_text)

    def _card(self, position: int, item: Explained) -> widgets.Widget:
        scale = THUMBNAIL / max(item.overlay.shape[:2])
        small = item.overlay if scale >= 1 else _resize(item.overlay, scale)
        image = widgets.Image(
            value=render.png_bytes(small), format="png", layout=widgets.Layout(max_width=f"{THUMBNAIL}px")
        )
        name, score = item.top[0][1], item.top[0][2]
        button = widgets.Button(
            description=f"{name} · {score:.2f}", tooltip=item.name, layout=widgets.Layout(width=f"{THUMBNAIL}px")
        )
        button.on_click(lambda _, k=position: self.explore(k))
        return widgets.VBox([image, button])

    def explore(self, position: int) -> Any:
        """Open item `position` (as shown) in an explorer below the thumbnails."""
        from camwidget.explorer.widget import CAMExplorer

        if self.refresh():  # the model changed: the positions shown are of the thumbnails made again
            self._arrange()
        item = self.items[position]
        if self.explorer is not None:
            self.explorer.close()
        explorer_options = {k: self._options[k] for k in _EXPLORER_OPTIONS if k in self._options}
        self.explorer = CAMExplorer(
            self._model,
            {item.name: self._sources[item.key]},
            class_names=self._class_names,
            preprocess=self._preprocess,
            **explorer_options,
        )
        self._below.children = [self.explorer]
        return self.explorer


def _resize(rgb: np.ndarray, scale: float) -> np.ndarray:
    import cv2

    size = (max(1, round(rgb.shape[1] * scale)), max(1, round(rgb.shape[0] * scale)))
    return cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
