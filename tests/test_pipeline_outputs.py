"""camwidget.pipeline.outputs: where a run's files go (plain, unique names inside --out, never over an input)
and the strings made safe for HTML and spreadsheets."""

from __future__ import annotations

from camwidget.pipeline.outputs import csv_cell, output_names


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
