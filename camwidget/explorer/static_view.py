"""A still picture of the explorer's view, for the places where its front end cannot run.

nbconvert's HTML, GitHub's notebook viewer and the docs site have no kernel and, mostly, no widget manager:
they show a widget's ``application/vnd.jupyter.widget-view+json`` output as "Loading widget..." or nothing.
Each of them falls back to the next format in the output's bundle that it can draw, so the explorer adds an
``image/png`` of what it shows. The picture is put together from the widget tree itself: the Image widgets
that are visible, at the size their layout gives them on screen, laid out as their boxes lay them out (an
HBox left to right, any other box top to bottom), with the status line written underneath, so the still says
what the view is (image, class, layer, method) as the live one does.
"""

from __future__ import annotations

import io
import re
from collections.abc import Sequence

import ipywidgets as widgets
from matplotlib import font_manager
from PIL import Image, ImageDraw, ImageFont

GAP = 8  # px between panels, as the notebook lays them out
MAX_WIDTH = 1024  # px: a wider still is scaled down (a compare grid and its controls fit a page)
FONT_SIZE = 13
LINE_HEIGHT = 17
BACKGROUND = (255, 255, 255)
TEXT = (34, 34, 34)
NOTE = "A still of the explorer's view: its controls need a running notebook."


def view_png(widget: widgets.Widget, status: str = "") -> bytes | None:
    """A PNG of the pictures a widget shows, laid out as on screen, with `status` written underneath.

    Args:
        widget: the explorer, or any box of widgets. Image widgets hidden by their layout (``display:
            none``), or inside a hidden box, or still empty are left out; other widgets (controls, HTML)
            take no room.
        status: the status line as plain text (one row a line), written under the pictures, then a note
            that this is a still.

    Returns:
        The PNG's bytes, or None when no picture is shown yet (then the bundle simply has no ``image/png``).
        Its width is the panels' on-screen width (scaled down evenly to :data:`MAX_WIDTH` past that, and at
        least 320 px, for the text); its height the panels' height, a gap and :data:`LINE_HEIGHT` per line
        of text.
    """
    picture = _still(widget)
    if picture is None:
        return None
    if picture.width > MAX_WIDTH:
        height = max(1, round(picture.height * MAX_WIDTH / picture.width))
        picture = picture.resize((MAX_WIDTH, height), Image.Resampling.LANCZOS)
    picture = _with_text(picture, [*status.splitlines(), NOTE] if status else [NOTE])
    out = io.BytesIO()
    picture.save(out, format="PNG")
    return out.getvalue()


def _still(widget: widgets.Widget) -> Image.Image | None:
    """The picture one widget shows (None: nothing), following its layout's display and size."""
    layout = getattr(widget, "layout", None)
    if layout is not None and layout.display == "none":
        return None
    if isinstance(widget, widgets.Image):
        return _panel(widget) if widget.value else None
    if isinstance(widget, widgets.Box):
        parts = [p for p in (_still(child) for child in widget.children) if p is not None]
        if not parts:
            return None
        return _join(parts, across=isinstance(widget, widgets.HBox))
    return None


def _panel(view: widgets.Image) -> Image.Image:
    """An Image widget's picture at the size its layout shows it (its own size where the layout says none)."""
    with Image.open(io.BytesIO(view.value)) as encoded:
        picture = encoded.convert("RGB")
    height, width = _px(view.layout.height), _px(view.layout.width)
    if height and width:
        size = (width, height)
    elif height:
        size = (max(1, round(picture.width * height / picture.height)), height)
    elif width:
        size = (width, max(1, round(picture.height * width / picture.width)))
    else:
        return picture
    if size == picture.size:
        return picture
    # object-fit: contain, as the widget's layout says: the picture keeps its aspect inside the box
    scale = min(size[0] / picture.width, size[1] / picture.height)
    fitted = picture.resize(
        (max(1, round(picture.width * scale)), max(1, round(picture.height * scale))), Image.Resampling.LANCZOS
    )
    box = Image.new("RGB", size, BACKGROUND)
    box.paste(fitted, ((size[0] - fitted.width) // 2, (size[1] - fitted.height) // 2))
    return box


def _px(value: str | None) -> int | None:
    """A layout length in pixels ("560px" -> 560); None for anything else (auto, %, calc(...))."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)px\s*", value or "")
    return round(float(match.group(1))) if match else None


def _join(parts: Sequence[Image.Image], across: bool) -> Image.Image:
    """Pictures side by side (centred vertically, as the explorer's rows align them) or one under another."""
    if across:
        width, height = sum(p.width for p in parts) + GAP * (len(parts) - 1), max(p.height for p in parts)
    else:
        width, height = max(p.width for p in parts), sum(p.height for p in parts) + GAP * (len(parts) - 1)
    joined = Image.new("RGB", (width, height), BACKGROUND)
    at = 0
    for part in parts:
        joined.paste(part, (at, (height - part.height) // 2) if across else (0, at))
        at += (part.width if across else part.height) + GAP
    return joined


def _with_text(picture: Image.Image, lines: Sequence[str]) -> Image.Image:
    """`picture` with `lines` written under it, each wrapped at spaces to the picture's width."""
    # matplotlib's DejaVu Sans has the status line's ×, · and en spaces; Pillow's default font lacks them
    font = ImageFont.truetype(font_manager.findfont("DejaVu Sans"), FONT_SIZE)
    width = max(picture.width, 320)
    rows = [row for line in lines for row in _wrap(line, font, width - 4)]
    framed = Image.new("RGB", (width, picture.height + GAP + LINE_HEIGHT * len(rows)), BACKGROUND)
    framed.paste(picture, (0, 0))
    draw = ImageDraw.Draw(framed)
    for i, row in enumerate(rows):
        draw.text((2, picture.height + GAP + i * LINE_HEIGHT), row, fill=TEXT, font=font)
    return framed


def _wrap(line: str, font: ImageFont.FreeTypeFont, width: int) -> list[str]:
    """`line` in rows at most `width` px wide as `font` draws them, broken at spaces (a longer word alone)."""
    rows: list[str] = []
    for word in line.split(" "):
        if rows and font.getlength(f"{rows[-1]} {word}") <= width:
            rows[-1] = f"{rows[-1]} {word}"
        else:
            rows.append(word)
    return rows or [""]
