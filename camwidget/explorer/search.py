"""Finding a class by what a person types: "tabby", "Tabby", "cat", "281"."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from camwidget.pipeline.outputs import html_text

if TYPE_CHECKING:
    from camwidget.explorer.controls import Controls
    from camwidget.explorer.session import ExplorerSession


def match_classes(query: str, names: Sequence[str], limit: int | None = None) -> list[int]:
    """Class indices whose name matches `query`, best first: the index itself (a number typed), a whole
    name, a name that starts with it, a word of a name that starts with it, then any name that contains it;
    all case-insensitive, ties by index. An empty query matches nothing."""
    text = query.strip().lower()
    if not text:
        return []
    ranked: list[tuple[int, int]] = []
    if text.isdigit() and int(text) < len(names):
        ranked.append((0, int(text)))
    for i, name in enumerate(names):
        lowered = name.lower()
        if text not in lowered:
            continue
        if lowered == text:
            rank = 1
        elif lowered.startswith(text):
            rank = 2
        elif any(word.startswith(text) for word in lowered.replace("-", " ").replace("_", " ").split()):
            rank = 3
        else:
            rank = 4
        ranked.append((rank, i))
    seen: set[int] = set()
    best = [i for _, i in sorted(ranked) if not (i in seen or seen.add(i))]
    return best if limit is None else best[:limit]


def option_label(index: int, names: Sequence[str]) -> str:
    """How a class is written in the search box's list: 'tabby (281)'."""
    return f"{names[index]} ({index})"


class ClassSearch:
    """The class search box's behaviour: while typing, the matches listed (picking one from the list chooses it
    at once); Enter picks the best match; no match is said in the status line.

    Args:
        controls: the explorer's widgets (the search box, its hint, the class menu).
        session: gives the class names as they are now.
        say_error: puts a message in the status line.
    """

    LISTED = 30  # matches listed under the box

    def __init__(self, controls: Controls, session: ExplorerSession, say_error: Callable[[str], None]) -> None:
        self.controls, self.session, self.say_error = controls, session, say_error
        self.refresh()

    def options(self, text: str) -> list[str]:
        """The box's list: every class before anything is typed, then the matches, best first."""
        names = self.session.class_names
        chosen = range(len(names)) if not text.strip() else match_classes(text, names, limit=self.LISTED)
        return [option_label(i, names) for i in chosen]

    def refresh(self) -> None:
        """The list for what the box says now (after the model's classes changed)."""
        self.controls.class_search.options = self.options(self.controls.class_search.value)

    def on_typing(self, change: dict) -> None:
        """While typing: the matches listed, and a pick from the list chooses at once."""
        c, text, names = self.controls, change["new"], self.session.class_names
        picked = re.fullmatch(r".*\((\d+)\)", text)
        if picked and int(picked.group(1)) < len(names) and text == option_label(int(picked.group(1)), names):
            c.search_hint.value = ""
            c.class_.value = int(picked.group(1))
            return
        matches = match_classes(text, names)
        c.class_search.options = self.options(text)
        c.search_hint.value = (
            ""
            if not text.strip()
            else "<small>no class matches</small>"
            if not matches
            else f"<small>{len(matches)} match{'es' if len(matches) > 1 else ''}; Enter: "
            f"{html_text(option_label(matches[0], names))}</small>"
        )

    def on_submit(self, _: Any, content: dict, buffers: list) -> None:
        """Enter in the box picks the best match."""
        c = self.controls
        if content.get("event") != "submit" or c.syncing:
            return
        text = c.class_search.value
        matches = match_classes(text, self.session.class_names)
        if not matches:
            self.say_error(f"no class matches {text!r}: type part of a class name or its number")
            return
        with c.quietly():
            c.class_search.value = option_label(matches[0], self.session.class_names)
        c.search_hint.value = ""
        c.class_.value = matches[0]
