"""camwidget audit MODEL IMAGES --out DIR: the report, the tables and the flags, written only under --out with
every name escaped; bad labels are a one-line usage error."""

from __future__ import annotations

import csv
import json
import os
from html.parser import HTMLParser

import numpy as np
import pytest
from PIL import Image
from test_audit import CLASSES, pictures, trained

from camwidget.command_line import main

HOSTILE = "<img src=x onerror=alert(1)>"


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """A watermark model saved to a file; 40 pictures in class folders (two with names made to break HTML
    and spreadsheets), labels.csv and a masks folder."""
    root = tmp_path_factory.mktemp("audit_cli")
    model = trained("watermark", 1000, 3, 0.1, 1)
    model.save(root / "model.keras")
    x, y, masks = pictures(40, 100, "watermark", contrast=0.1)
    rows = []
    for i, (picture, label, mask) in enumerate(zip(x, y, masks)):
        name = f"{CLASSES[label]}/{i}.png"
        if i == 0:
            name = f"{CLASSES[label]}/{HOSTILE}.png"
        if i == 1:
            name = "=cmd().png"  # at the top: its name starts with '='
        for base, pixels in (("pics", (picture * 255).astype(np.uint8)), ("masks", (mask * 255).astype(np.uint8))):
            os.makedirs(root / base / CLASSES[label], exist_ok=True)
            Image.fromarray(pixels).save(root / base / name)
        rows.append((name, CLASSES[label]))
    with open(root / "labels.csv", "w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows([("picture", "label"), *rows])
    (root / "classes.txt").write_text("\n".join(CLASSES), encoding="utf-8")
    return root


class Elements(HTMLParser):
    def __init__(self):
        super().__init__()
        self.found = []

    def handle_starttag(self, tag, attrs):
        self.found.append((tag, dict(attrs)))


def test_audit_command_writes_the_report_under_out(folder, capsys):
    out = folder / "out"
    before = sorted(p.name for p in folder.iterdir())
    code = main(
        [
            "audit",
            str(folder / "model.keras"),
            str(folder / "pics"),
            "--out",
            str(out),
            "--labels",
            str(folder / "labels.csv"),
            "--masks",
            str(folder / "masks"),
            "--layer",
            "last_conv",
            "--concepts",
            "2",
            "--class-names",
            str(folder / "classes.txt"),
        ]
    )
    printed = capsys.readouterr()
    assert code == 0, printed.err
    assert sorted(p.name for p in folder.iterdir()) == sorted([*before, "out"])  # nothing written beside --out
    assert sorted(os.listdir(out)) == ["audit.html", "clusters.csv", "flags.json", "pictures.csv"]
    flags = json.loads((out / "flags.json").read_text())
    crosses = [f for f in flags if f["kind"] == "cluster" and f["class_name"] == "cross"]
    assert crosses and all("top-left corner" in f["reason"] for f in crosses)
    assert "flag: " in printed.out
    with open(out / "clusters.csv", encoding="utf-8") as f:
        clusters = list(csv.DictReader(f))
    assert {c["class_name"] for c in clusters} == {"circle", "cross"}
    with open(out / "pictures.csv", encoding="utf-8") as f:
        table = list(csv.DictReader(f))
    assert len(table) == 40
    assert all(not row["picture"].startswith("=") for row in table)  # csv_cell: no formula
    assert any(row["picture"].startswith("'=cmd") for row in table)
    assert all(row["inside_mask"] != "" for row in table)
    page = (out / "audit.html").read_text(encoding="utf-8")
    elements = Elements()
    elements.feed(page)
    assert not any(tag == "img" and attrs.get("src") == "x" for tag, attrs in elements.found)
    assert not any("onerror" in attrs for _, attrs in elements.found)
    assert "&lt;img src=x onerror=alert(1)&gt;" in page or HOSTILE not in page


def test_bad_labels_are_a_usage_error(folder, capsys, tmp_path):
    labels = tmp_path / "labels.csv"
    labels.write_text("picture,label\ncircle/2.png,horse\n", encoding="utf-8")
    code = main(
        ["audit", str(folder / "model.keras"), str(folder / "pics"), "--out", str(tmp_path / "o")]
        + ["--labels", str(labels), "--concepts", "0"]
    )
    err = capsys.readouterr().err
    assert code == 2
    assert "of 40 pictures" in err and "no label for" in err and len(err.strip().splitlines()) == 1
