"""Class search: what a person types finds the class."""

from __future__ import annotations

from camwidget.explorer.search import match_classes, option_label

NAMES = ["tench", "goldfish", "tabby", "tiger cat", "Persian cat", "Egyptian cat", "tiger", "cat-o-nine"]


def test_case_insensitive_substring_best_first():
    assert match_classes("TABBY", NAMES) == [2]
    # a name that starts with it, then a word that starts with it, then any other name containing it
    assert match_classes("cat", NAMES) == [7, 3, 4, 5]
    assert match_classes("tiger", NAMES) == [6, 3]  # the whole name first


def test_number_matches_the_index_first():
    assert match_classes("2", NAMES)[0] == 2
    assert match_classes(" 6 ", NAMES) == [6]
    assert match_classes("99", NAMES) == []


def test_nothing_typed_or_nothing_found():
    assert match_classes("", NAMES) == [] and match_classes("   ", NAMES) == []
    assert match_classes("zebra", NAMES) == []


def test_limit_and_label():
    assert match_classes("t", NAMES, limit=2) == [0, 2]
    assert option_label(2, NAMES) == "tabby (2)"
