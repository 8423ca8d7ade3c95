"""The audit in the notebook: a class selector, the flags, the cluster strip (mean maps, sizes, suspicion,
typical pictures), a t-SNE plot of the maps coloured by cluster, the class's pictures ranked by suspicion, and
below, a CAMExplorer of any picture clicked, with the audit's method, layer and class. Wiring only: every
number and picture comes from the :class:`~camwidget.audits.analysis.Audit` and its report module."""

from __future__ import annotations

from typing import Any

import ipywidgets as widgets

from camwidget import render
from camwidget.audits.report import embedding_png, map_tile, thumbnail
from camwidget.pipeline.outputs import html_text

RANKED = 50  # pictures listed in the ranked picker


class AuditView(widgets.VBox):
    """The widget of an :class:`~camwidget.audits.analysis.Audit` (``audit.widget()``, or the audit shown)."""

    def __init__(self, audit: Any) -> None:
        self.audit = audit
        choices = [(f"{entry.name} ({len(entry.members)} pictures)", c) for c, entry in audit.per_class.items()]
        self.class_selector = widgets.Dropdown(options=choices, description="class")
        self.flags = widgets.HTML()
        self.strip = widgets.HBox(layout=widgets.Layout(flex_flow="row wrap"))
        self.embedding = widgets.Image(format="png")
        self.ranked = widgets.Dropdown(description="pictures", layout=widgets.Layout(width="32em"))
        self.open_button = widgets.Button(description="open in explorer")
        self.below = widgets.VBox()  # the CAMExplorer of the picture chosen
        self.opened: int | None = None  # the row shown below
        self.class_selector.observe(lambda change: self.show_class(change["new"]), names="value")
        self.open_button.on_click(lambda _: self.open_picture(self.ranked.value))
        super().__init__(
            [
                widgets.HTML(f"<b>Audit</b>: {html_text(repr(audit))}"),
                self.class_selector,
                self.flags,
                self.strip,
                widgets.HBox([self.embedding, widgets.VBox([self.ranked, self.open_button])]),
                self.below,
            ]
        )
        if choices:
            self.show_class(choices[0][1])

    def show_class(self, class_index: int) -> None:
        """Draw one class: its flags, its clusters, its embedding and its ranked pictures."""
        audit = self.audit
        entry = audit.per_class[class_index]
        mine = [f for f in audit.flags() if f.class_index == class_index]
        items = "".join(f"<li>{html_text(f.reason)}</li>" for f in mine) or "<li>nothing flagged</li>"
        note = f"<p>{html_text(entry.note)}</p>" if entry.note else ""
        self.flags.value = f"<ul style='color:#900'>{items}</ul>{note}"
        cards = [self._card("mean map", entry.mean_map, f"all {len(entry.members)} pictures", [])]
        for cluster in entry.clusters:
            caption = (
                f"{cluster.size} pictures, suspicion {cluster.suspicion:.0%}{' (flagged)' if cluster.flagged else ''}"
            )
            cards.append(self._card(f"cluster {cluster.number}", cluster.mean_map, caption, cluster.typical))
        self.strip.children = cards
        self.embedding.value = embedding_png(audit, class_index) if entry.clusters else b""
        rows = audit.ranked(class_index)[:RANKED]
        self.ranked.options = [(f"{audit.names[r]} (suspicion {audit.suspicion[r]:.0%})", r) for r in rows]

    def _card(self, title: str, mean_map: Any, caption: str, typical: list[int]) -> widgets.VBox:
        picture = widgets.Image(value=render.png_bytes(map_tile(mean_map)), format="png")
        buttons = []
        for row in typical:
            thumb = widgets.Image(value=render.png_bytes(thumbnail(self.audit, row, 64)), format="png")
            button = widgets.Button(description="open", tooltip=self.audit.names[row], layout={"width": "64px"})
            button.on_click(lambda _, row=row: self.open_picture(row))
            buttons.append(widgets.VBox([thumb, button]))
        return widgets.VBox(
            [
                widgets.HTML(f"<b>{html_text(title)}</b>"),
                picture,
                widgets.HTML(html_text(caption)),
                widgets.HBox(buttons),
            ],
            layout=widgets.Layout(border="1px solid #ccc", padding="4px", margin="2px"),
        )

    def open_picture(self, row: int | None) -> None:
        """Show picture `row` below in a CAMExplorer with the audit's method, layer and class."""
        if row is None:
            return
        self.opened = int(row)
        self.below.children = [widgets.HTML(f"<b>{html_text(self.audit.names[row])}</b>"), self.audit.explorer(row)]
