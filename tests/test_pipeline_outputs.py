"""camwidget.pipeline.outputs: where a run's files go (plain, unique names inside --out, never over an input)
and the strings made safe for HTML and spreadsheets."""

from __future__ import annotations

import html
import os
import tempfile
import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from camwidget.pipeline.outputs import (
    MAX_PART_BYTES,
    OutputFolder,
    UnsafeOutput,
    csv_cell,
    html_text,
    output_names,
    plain_part,
)


def test_names_are_unique_stable_and_plain():
    pictures = [
        ("k1", "a/imgs/cat.png"),
        ("k2", "b/imgs/cat.png"),
        ("k3", "cat.png"),
        ("k4", "cat.jpg"),
        ("k5", "../../etc/passwd"),
        ("k6", ".hidden"),
        ("k7", "x.png/y.png"),
        ("k8", "x.jpg"),
    ]
    names = output_names(pictures)
    assert names["k5"] == "etc/passwd" and names["k6"] == "_.hidden"
    assert names["k8"] != "x"  # x.png would be a file where x.png/ is a folder
    again = output_names([("k9", "cat.png"), ("k4", "cat.jpg")], taken={v: k for k, v in names.items()})
    assert again["k4"] == names["k4"] and again["k9"] not in names.values()


def test_csv_cells_that_a_spreadsheet_would_run_are_neutralised():
    for text in ["=1+1", "+1", "-1", "@SUM(A1)", "\tx", "\rx"]:
        assert csv_cell(text) == "'" + text
    assert csv_cell("cat.png") == "cat.png" and csv_cell(-0.5) == -0.5 and csv_cell(3) == 3


# -- any name: Hypothesis against the module's promises, written here as predicates --------------------------

TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=300)
CONTROL = {chr(c) for c in range(32)} | {"\x7f"}


def is_plain(part: str) -> bool:
    """A file name every file system takes and that is not special (outputs.plain_part's promise)."""
    return (
        part != ""
        and not part.startswith(".")
        and not any(ch in CONTROL or ch in "/\\" for ch in part)
        and len(part.encode("utf-8")) <= MAX_PART_BYTES
    )


def folded(name: str) -> str:
    """The name as a case-insensitive, normalising file system (macOS, Windows) compares it."""
    return unicodedata.normalize("NFC", name).casefold()


@given(st.text(st.characters(blacklist_categories=()), max_size=300))  # lone surrogates too (undecodable names)
def test_any_part_becomes_a_plain_name(part):
    assert is_plain(plain_part(part))


@given(
    st.text(
        st.characters(blacklist_categories=("Cs", "Cc", "Zs", "Zl", "Zp"), blacklist_characters="/\\."),
        min_size=1,
        max_size=40,
    )
)
def test_a_plain_part_is_kept_as_it_is(part):
    assert plain_part(part) == part


PICTURE_PATHS = st.lists(
    st.lists(st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=8), min_size=1, max_size=3).map(
        "/".join
    ),
    min_size=1,
    max_size=8,
)


@settings(max_examples=200)
@given(PICTURE_PATHS)
def test_any_pictures_get_plain_names_that_never_meet(readable):
    pictures = [(f"item:{i}", name) for i, name in enumerate(readable)]
    names = output_names(pictures)
    assert sorted(names) == sorted(who for who, _ in pictures)
    assert len({folded(n) for n in names.values()}) == len(names)  # not even where case or accents differ
    for name in names.values():
        assert all(is_plain(part) for part in name.split("/")), name
        overlay = folded(name) + ".png"
        assert not any(folded(other).startswith(overlay + "/") for other in names.values()), name  # file vs folder
    assert output_names(pictures, taken={n: who for who, n in names.items()}) == names  # a resumed run: the same


@given(TEXT)
def test_html_text_reads_back_as_written_and_opens_no_markup(text):
    escaped = html_text(text)
    assert html.unescape(escaped) == text
    assert not set(escaped) & set("<>\"'")


@given(st.one_of(TEXT, st.integers(), st.floats(allow_nan=False)))
def test_a_csv_cell_is_the_value_unless_a_spreadsheet_would_run_it(value):
    runs = isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r")
    assert csv_cell(value) == ("'" + value if runs else value)


PARTS = st.lists(
    st.sampled_from(["a", "b.png", "in.png", "link", "out", "..", ".", "", "x/y", "\0"]), min_size=1, max_size=4
)


@given(PARTS)
def test_a_path_is_inside_the_folder_and_off_the_inputs_or_refused(parts):
    """out/ holds a folder a/, an input in.png and link -> the folder above out/ (so link/out/a is inside)."""
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "out")
        os.makedirs(os.path.join(out, "a"))
        os.symlink(tmp, os.path.join(out, "link"))
        picture = os.path.join(out, "in.png")
        open(picture, "wb").close()
        root = os.path.realpath(out)
        if any(p in ("", ".", "..") or "/" in p or "\0" in p for p in parts):
            allowed = False
        else:
            real = os.path.realpath(os.path.join(out, *parts))
            allowed = real.startswith(root + os.sep) and real != os.path.realpath(picture)
        folder = OutputFolder.of(out, [picture])
        if allowed:
            assert folder.path(*parts) == os.path.join(out, *parts)
        else:
            with pytest.raises(UnsafeOutput):
                folder.path(*parts)
