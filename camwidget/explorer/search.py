"""Finding a class by what a person types: "tabby", "Tabby", "cat", "281"."""

from __future__ import annotations

from collections.abc import Sequence


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
