"""The one place that decides where a run's files go and makes every string that leaves camwidget for an HTML
page or a spreadsheet safe.

Three guarantees, whatever the pictures are called or where they lie:

1. every file a run writes is inside its output folder (resolved, symlinks followed);
2. no file a run writes is one of its inputs;
3. two different pictures never share an output file, in one run or across resumed runs.

A picture's output name is its path relative to the deepest folder that holds every input (so the folder
structure is kept: ``a/imgs/cat.png`` and ``b/imgs/cat.png`` stay apart), each part made a plain file name;
a short suffix from the picture's identity is added only where two pictures would otherwise meet
(``cat.png`` and ``cat.jpg``, or a name an earlier run gave another picture).

Strings: :func:`html_text` for any text placed in HTML (element text or a quoted attribute), :func:`csv_cell`
for a cell of a table a spreadsheet may open (OWASP's advice on CSV injection).
"""

from __future__ import annotations

import hashlib
import html
import os
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from camwidget.errors import CAMError

SUFFIX_LENGTH = 6  # hex digits of the identity's hash added to a name that is taken
MAX_PART_BYTES = 200  # a file name part, in UTF-8 (file systems allow 255; room for a suffix and ".png")
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


class UnsafeOutput(CAMError):
    """A file the run was about to write would land outside its output folder or over one of its inputs."""


def html_text(value: Any) -> str:
    """`value` as text that HTML shows as written: ``& < > " '`` escaped, so no element or attribute can come
    from it, inside element text or a quoted attribute alike."""
    return html.escape(str(value), quote=True)


def csv_cell(value: Any) -> Any:
    """A table cell a spreadsheet will not run: a string starting with ``= + - @``, a tab or a carriage
    return gets a leading ``'`` (OWASP, "CSV Injection"); numbers and other strings are returned as they are.
    The exact text stays in results.json."""
    if isinstance(value, str) and value.startswith(_FORMULA_STARTS):
        return "'" + value
    return value


def identity(source: Any, fallback: str) -> str:
    """What makes a picture this picture: a file's resolved path (two spellings of one file are one picture),
    else `fallback` (e.g. ``"image 3"`` for the fourth array given)."""
    if isinstance(source, (str, os.PathLike)):
        return "file:" + os.path.realpath(os.fspath(source))
    return "item:" + fallback


def short_hash(text: str, length: int = SUFFIX_LENGTH) -> str:
    return hashlib.sha1(text.encode("utf-8", "surrogatepass")).hexdigest()[:length]


def state_key(picture_identity: str) -> str:
    """A picture's name among the run's state files: a hash of its identity, so that no two pictures can
    share one, whatever characters their names hold."""
    return hashlib.sha1(picture_identity.encode("utf-8", "surrogatepass")).hexdigest()


def plain_part(part: str) -> str:
    """One part of a path as a file name that every file system takes and that is not special: control
    characters (newlines included) and slashes become ``_``, a leading dot gets a ``_`` (no hidden files, no
    ``..``), an empty part is ``_``, and a long part is cut to MAX_PART_BYTES of UTF-8."""
    part = "".join("_" if ord(ch) < 32 or ch in "/\\\x7f" else ch for ch in part)
    part = part.encode("utf-8", "replace").decode("utf-8")  # lone surrogates from undecodable names
    if part.startswith("."):
        part = "_" + part
    if not part.strip():
        part = "_"
    encoded = part.encode("utf-8")
    if len(encoded) > MAX_PART_BYTES:
        part = encoded[:MAX_PART_BYTES].decode("utf-8", "ignore")
    return part


def relative_parts(name: str, plain: bool = True) -> list[str]:
    """A path as the user wrote it -> its parts without the anchor, ``.`` and ``..``, each a plain part
    (unless `plain` is False)."""
    pieces = [p for p in name.replace("\\", "/").split("/") if p not in ("", ".", "..")] or ["_"]
    return [plain_part(p) for p in pieces] if plain else pieces


def common_root(paths: Iterable[str]) -> str | None:
    """The deepest folder holding every path (absolute), or None for none."""
    folders = [os.path.abspath(p) for p in paths]
    if not folders:
        return None
    try:
        return os.path.commonpath(folders)
    except ValueError:  # paths on different drives (Windows)
        return None


def _fold(text: str) -> str:
    """Names that a case-insensitive or normalising file system (macOS, Windows) would take for one."""
    return unicodedata.normalize("NFC", text).casefold()


@dataclass(frozen=True)
class OutputFolder:
    """A run's output folder: where each file goes, checked (see the module's three guarantees).

    Args:
        out: the folder, as given (``--out``); it need not exist yet.
        inputs: every input path (files and folders as given, and each picture file found).
    """

    out: str
    inputs: frozenset[str] = frozenset()

    @classmethod
    def of(cls, out: str | os.PathLike, inputs: Iterable[str | os.PathLike] = ()) -> OutputFolder:
        return cls(os.fspath(out), frozenset(os.path.realpath(os.fspath(p)) for p in inputs))

    @property
    def real(self) -> str:
        return os.path.realpath(self.out)

    def contains(self, path: str) -> bool:
        """Whether `path`, resolved, lies inside the output folder."""
        real, root = os.path.realpath(path), self.real
        return real != root and os.path.commonpath([real, root]) == root

    def path(self, *parts: str) -> str:
        """The path of a file of the run under the folder. Raises UnsafeOutput if it would resolve (through
        a symlink) outside the folder or onto an input: nothing is ever written there."""
        if any(p in ("", ".", "..") or "/" in p or os.sep in p or "\0" in p for p in parts):
            raise UnsafeOutput(f"{'/'.join(parts)!r} is not a plain name under the output folder")
        target = os.path.join(self.out, *parts)
        real = os.path.realpath(target)
        if not self.contains(target):
            raise UnsafeOutput(
                f"refusing to write {target!r}: it resolves to {real!r}, outside the output folder {self.real!r} "
                "(a symlink inside it?)"
            )
        if real in self.inputs:
            raise UnsafeOutput(f"refusing to write {target!r}: it is one of the pictures given as input")
        return target

    def is_input(self, *parts: str) -> bool:
        return os.path.realpath(os.path.join(self.out, *parts)) in self.inputs

    def excluded_from_inputs(self, folder: str) -> bool:
        """Whether a folder met while looking for pictures is this output folder (or inside it): a rerun must
        never read its own overlays as pictures."""
        real = os.path.realpath(folder)
        root = self.real
        return real == root or os.path.commonpath([real, root]) == root


def output_names(
    pictures: Sequence[tuple[str, str]],
    taken: Mapping[str, str] | None = None,
    is_taken: Any = None,
) -> dict[str, str]:
    """Each picture's output name: a relative path without extension, unique among these pictures and the
    names already `taken`.

    Args:
        pictures: (identity, readable name) pairs, in input order; the readable name is the picture's path
            relative to the inputs' common folder (or ``"image i"``).
        taken: output name -> identity, for names earlier runs gave (a picture met again keeps its name).
        is_taken: optional ``f(name) -> bool`` for names unavailable for any other reason (an input's path).

    Returns:
        identity -> output name ("/"-separated parts, each a plain file name). The readable name is kept where
        it is free; otherwise ``<stem>-<hash>`` with a short hash of the identity (longer if even that is taken).
    """
    taken = dict(taken or {})
    owner: dict[str, str] = {}  # folded name -> identity
    files: set[str] = set()  # folded overlay files: "<name>.png"
    folders: set[str] = set()  # folded folders the names sit in

    def claim(name: str, who: str) -> None:
        folded = _fold(name)
        owner[folded] = who
        files.add(folded + ".png")
        parts = folded.split("/")
        folders.update("/".join(parts[:k]) for k in range(1, len(parts)))

    def free(name: str) -> bool:
        folded = _fold(name)
        parts = folded.split("/")
        return (
            folded not in owner
            and folded + ".png" not in folders  # a file where another name needs a folder, or the reverse
            and not any("/".join(parts[:k]) in files for k in range(1, len(parts)))
            and not (is_taken and is_taken(name))
        )

    for name, who in taken.items():
        claim(name, who)
    kept = {who: name for name, who in taken.items()}
    names: dict[str, str] = {}
    for who, readable in pictures:
        if who in names:
            continue
        if who in kept:
            names[who] = kept[who]
            continue
        *within, last = relative_parts(readable, plain=False)
        within = [plain_part(f) for f in within]
        stem = os.path.splitext(last)[0] or last
        candidates = ["/".join([*within, plain_part(stem)])]
        for length in (SUFFIX_LENGTH, 12, 40):
            candidates.append("/".join([*within, plain_part(f"{stem}-{short_hash(who, length)}")]))
        for candidate in candidates:
            if free(candidate):
                break
        else:  # a 160-bit hash taken too: cannot happen by chance
            raise UnsafeOutput(f"no free output name for {readable!r}")
        claim(candidate, who)
        names[who] = candidate
    return names
