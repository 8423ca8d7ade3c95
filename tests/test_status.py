"""The explorer's status line: a value (camwidget.explorer.status.Status) drawn to HTML in one function."""

from __future__ import annotations

from html.parser import HTMLParser

import numpy as np
import pytest

import camwidget as cw
from camwidget.explorer.status import Shown, Status, status_html

EVIL = '<img src=x onerror="alert(1)">\'"&'


class _Structure(HTMLParser):
    """Every element and attribute name the HTML holds, and its text."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[tuple[str, tuple[str, ...]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.found.append((tag, tuple(name for name, _ in attrs)))

    def handle_data(self, data):
        self.text.append(data)


def structure(page: str) -> _Structure:
    parser = _Structure()
    parser.feed(page)
    parser.close()
    return parser


def evil_status() -> Status:
    shown = Shown(EVIL, (EVIL, "0.50"), EVIL, "0.50", EVIL, "4×4", EVIL, 0.012, "full pass")
    return Status(shown=shown, notes=(EVIL, EVIL), warnings=(EVIL,), error=EVIL)


def test_status_html_takes_no_element_or_attribute_from_data():
    found = structure(status_html(evil_status()))
    assert set(found.found) <= {("div", ("style",)), ("b", ()), ("br", ()), ("small", ()), ("span", ("style",))}
    assert ("img", ("src", "onerror")) not in found.found and all(tag != "img" for tag, _ in found.found)
    assert EVIL in "".join(found.text)  # shown as written, not dropped


def test_status_text_is_what_the_html_shows():
    status = evil_status()
    page = status_html(status).replace("<br>", "\n")
    assert "".join(structure(page).text) == status.text()


def test_status_says_timing_and_cache():
    fresh = Shown("a", ("cat", "0.90"), "cat", "0.90", "conv", "4×4", "Grad-CAM", 0.0123, "full pass")
    cached = Shown("a", None, "cat", "0.90", "conv", "4×4", "Grad-CAM", 0.0, "cached")
    assert not fresh.from_cache and fresh.timing == "computed now, 12 ms (full pass)"
    assert cached.from_cache and cached.timing == "from cache"
    assert "Prediction:" not in Status(shown=cached).text() and "Prediction: cat · 0.90" in Status(shown=fresh).text()
    assert Status(error="bad").with_error(None).error is None


@pytest.fixture
def explorer(small, rng):
    ex = cw.CAMExplorer(small, rng.integers(0, 256, (40, 40, 3), dtype=np.uint8), class_names=["cat", "dog", EVIL])
    yield ex
    ex.close()


def test_explorer_status_model_says_the_view_and_an_error(explorer):
    ex = explorer
    shown = ex.status.shown
    assert shown.layer == ex.layer and shown.method == "Grad-CAM" and shown.class_name == ex.class_names[ex.class_index]
    assert ex.status.error is None and ex.status.computing is None
    search = ex.controls["class-search"]
    search.value = "no such thing"
    search._handle_custom_msg({"event": "submit"}, [])  # Enter, as the browser sends it
    assert ex.status.error == "no class matches 'no such thing': type part of a class name or its number"
    assert ex.status.shown == shown and ex.status_text.endswith(f"✖ {ex.status.error}")
    ex.alpha = 0.3  # a change that works clears the error
    assert ex.status.error is None


def test_explorer_status_line_escapes_a_class_name(explorer):
    ex = explorer
    ex.class_index = 2
    assert ex.status.shown.class_name == EVIL and f"explaining {EVIL}" in ex.status_text
    found = structure(ex.controls["status"].value)
    assert all(tag in {"div", "b", "br", "small", "span"} for tag, _ in found.found)
    assert EVIL in "".join(found.text)
