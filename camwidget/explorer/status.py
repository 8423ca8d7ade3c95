"""The explorer's status line as a value: what is shown, what is being computed, notes, warnings, an error.

The widget builds a :class:`Status` from the view on screen (:func:`status_of`) and shows it with
:func:`status_html`, the one place the line becomes HTML: every string in it comes from data (file names,
class names, layer paths, error messages) and goes through :func:`camwidget.pipeline.outputs.html_text`, so
no element or attribute can come from it. ``CAMExplorer.status_text`` is :meth:`Status.text`, read from
the value, not from the HTML.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from camwidget.methods import METHODS
from camwidget.pipeline.outputs import html_text

_SEPARATOR = " \xa0|\xa0 "  # as the HTML's "&nbsp;|&nbsp;" reads as text
_WARNING_STYLE = "color:#b35900"
_ERROR_STYLE = "color:#c00"
# wrapped, never cut: a long error must be read to the end at any cell width
_LINE_STYLE = "white-space:normal;overflow-wrap:anywhere;line-height:1.45"


@dataclass(frozen=True)
class Shown:
    """The view on screen, as the status line's first line says it.

    Attributes:
        image: the image's name.
        predicted: the model's top class and its score as shown (``("tabby", "0.91")``), or None when the
            explorer explains a target (one score, the target's, said once).
        class_name: the class (or target) the map explains.
        class_score: its score as shown (``"0.91"``; ``"63% of pixels"`` for a per-pixel model).
        layer: the layer's path.
        shape: the map's shape (``"16×16"``; a clip's adds its frame).
        method: the method's label (``"Grad-CAM"``).
        seconds: how long the map took (0 from the cache).
        how: ``"cached"`` (the map itself was kept), or what the map was computed from now: ``"full pass"``,
            ``"after-layer pass"`` (a class change), ``"from the warm-up pass's gradients"``, ``"from an
            earlier pass's gradients"``, ``"6 augmented passes"``.
    """

    image: str
    predicted: tuple[str, str] | None
    class_name: str
    class_score: str
    layer: str
    shape: str
    method: str
    seconds: float
    how: str

    @property
    def from_cache(self) -> bool:
        """True when the map came from the explorer's caches (no pass was run for it)."""
        return self.how == "cached"

    @property
    def timing(self) -> str:
        """``"from cache"``, or computed now with its time and what it was computed from
        (``"computed now, 12 ms (full pass)"``): a fresh computation never reads as cached."""
        return "from cache" if self.from_cache else f"computed now, {self.seconds * 1e3:.0f} ms ({self.how})"


@dataclass(frozen=True)
class Status:
    """What the status line says. Every field is plain text; :func:`status_html` makes it safe for HTML.

    Attributes:
        shown: the view on screen (None before the first one).
        computing: what the background worker computes now (``"Score-CAM at conv_b"``), None when idle.
        notes: how the picture was read (EXIF turn, preprocessing, resizing), joined by "; ".
        warnings: a blank map's diagnostic, a notice said once (a layer gone from a changed model).
        error: why the last change could not be shown (the view stays on the last that worked).
    """

    shown: Shown | None = None
    computing: str | None = None
    notes: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    error: str | None = None

    def with_error(self, error: str | None) -> Status:
        """This status with `error` (None: without one)."""
        return replace(self, error=error)

    def with_computing(self, computing: str | None) -> Status:
        """This status saying the worker computes `computing` (None: nothing)."""
        return replace(self, computing=computing)

    def lines(self) -> list[str]:
        """The line's rows as plain text, in the order shown (the first says what is shown)."""
        rows = []
        if self.shown is not None:
            s = self.shown
            predicted = "" if s.predicted is None else f"Prediction: {s.predicted[0]} · {s.predicted[1]}{_SEPARATOR}"
            rows.append(
                f"{s.image}{_SEPARATOR}{predicted}explaining {s.class_name} · {s.class_score} at {s.layer} "
                f"({s.shape}){_SEPARATOR}{s.method}: {s.timing}"
            )
        if self.notes:
            rows.append("; ".join(self.notes))
        rows += [f"⚠ {warning}" for warning in self.warnings]
        if self.error:
            rows.append(f"✖ {self.error}")
        return rows

    def text(self) -> str:
        """The status line as plain text, one row a line."""
        return "\n".join(self.lines())


def status_html(status: Status) -> str:
    """The status line as HTML: the only place it becomes HTML, each string from data through ``html_text``.

    Args:
        status: what to say.

    Returns:
        One ``<div>`` whose rows are separated by ``<br>``: the view shown (names in bold), the notes (small),
        each warning (orange, ⚠) and the error (red, ✖). Only the markup written here is markup.
    """
    rows = []
    if status.shown is not None:
        s = status.shown
        separator = " &nbsp;|&nbsp; "
        predicted = (
            ""
            if s.predicted is None
            else f"<b>Prediction:</b> {html_text(s.predicted[0])} · {html_text(s.predicted[1])}{separator}"
        )
        rows.append(
            f"<b>{html_text(s.image)}</b>{separator}{predicted}<b>explaining</b> {html_text(s.class_name)} · "
            f"{html_text(s.class_score)} at <b>{html_text(s.layer)}</b> ({html_text(s.shape)}){separator}"
            f"{html_text(s.method)}: {html_text(s.timing)}"
        )
    if status.notes:
        rows.append(f"<small>{html_text('; '.join(status.notes))}</small>")
    rows += [f"<span style='{_WARNING_STYLE}'>⚠ {html_text(warning)}</span>" for warning in status.warnings]
    if status.error:
        rows.append(f"<span style='{_ERROR_STYLE}'>✖ {html_text(status.error)}</span>")
    return f"<div style='{_LINE_STYLE}'>" + "<br>".join(rows) + "</div>"


def computing_html(what: str) -> str:
    """The progress line's text (``"computing Grad-CAM at conv_b…"``) as HTML, escaped through ``html_text``."""
    return html_text(what)


def status_of(
    session: Any,
    view: Any,
    image: int,
    frame: int,
    *,
    notice: str | None = None,
    error: str | None = None,
) -> Status:
    """The status of the explorer showing `view` of image `image` (frame `frame` of a clip).

    Args:
        session: the explorer's :class:`~camwidget.explorer.session.ExplorerSession` (names, notes, kind).
        view: the :class:`~camwidget.explorer.session.View` on screen, or None before the first.
        image: the index of the image the view is of.
        frame: the frame shown (0 but for clips).
        notice: a warning said once (the caller drops it after).
        error: why the last change could not be shown.

    Returns:
        The :class:`Status`; scores read as ``0.91``, or as a share of pixels (``63% of pixels``) for a model
        with one class per pixel.
    """
    warnings: list[str] = []
    shown, notes = None, ()
    if view is not None:
        names, probs = session.class_names, view.probabilities
        top = int(np.argmax(probs))

        def score(value: float) -> str:
            return f"{value:.0%} of pixels" if session.per_position else f"{value:.2f}"

        shape = "×".join(str(d) for d in (view.cam if view.full is None else view.full).shape)
        if session.kind == "volume":
            shape += f", frame {frame} of 0-{session.frames(image) - 1}"
        shown = Shown(
            image=session.names[image],
            # a target: one score, the target's, said once
            predicted=None if not session.explainer.explains_class else (names[top], score(probs[top])),
            class_name=names[view.class_index],
            class_score=score(probs[view.class_index]),
            layer=view.layer.path,
            shape=shape,
            method=METHODS[view.method].label,
            seconds=view.seconds,
            how=view.how,
        )
        notes = tuple(session.notes[image]) + (f"preprocessing: {session.preprocessing.description}",)
        resized = session.resized.get(image)
        if resized:
            (h0, w0), (h1, w1) = resized
            notes += (f"resized from {w0}×{h0} to {w1}×{h1} for the model (max_side={session.max_side})",)
        if view.diagnostic:
            warnings.append(view.diagnostic)
    if notice:
        warnings.append(notice)
    if session.model_note:  # what the model is (a random-weights stand-in), said with every view
        warnings.insert(0, session.model_note)
    return Status(shown=shown, notes=notes, warnings=tuple(warnings), error=error)
