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


def audit_args(folder, out, *more):
    return [
        "audit",
        str(folder / "model.keras"),
        str(folder / "pics"),
        "--out",
        str(out),
        "--labels",
        str(folder / "labels.csv"),
        "--layer",
        "last_conv",
        "--concepts",
        "0",
        "--batch-size",
        "8",
        "--class-names",
        str(folder / "classes.txt"),
        *more,
    ]


def test_audit_command_writes_the_report_under_out(folder, capsys):
    out = folder / "out"
    before = sorted(p.name for p in folder.iterdir())
    code = main(audit_args(folder, out, "--masks", str(folder / "masks"), "--concepts", "2"))
    printed = capsys.readouterr()
    assert code == 0, printed.err
    assert sorted(p.name for p in folder.iterdir()) == sorted([*before, "out"])  # nothing written beside --out
    assert sorted(os.listdir(out)) == [".camwidget", "audit.html", "clusters.csv", "flags.json", "pictures.csv"]
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


@pytest.fixture
def counted(monkeypatch):
    """Every picture the Explainer makes a map of is counted; `stop` batches from now a Ctrl-C comes instead."""
    from camwidget.explain import Explainer

    original = Explainer.explain_with_scores
    state = {"pictures": 0, "stop": None}

    def counting(self, batch, class_index=None):
        if state["stop"] is not None:
            if state["stop"] == 0:
                raise KeyboardInterrupt
            state["stop"] -= 1
        state["pictures"] += len(batch)
        return original(self, batch, class_index)

    monkeypatch.setattr(Explainer, "explain_with_scores", counting)
    return state


def test_an_interrupted_audit_resumes_without_recomputing_and_ends_as_a_fresh_run(folder, tmp_path, counted, capsys):
    resumed, fresh = tmp_path / "resumed", tmp_path / "fresh"
    counted["stop"] = 3  # Ctrl-C in the fourth batch (of at most 8 pictures, one class at a time)
    assert main(audit_args(folder, resumed)) == 130
    first = counted["pictures"]
    assert 0 < first < 40
    assert f"interrupted: {first} of 40 done; run the same command again to resume" in capsys.readouterr().err
    assert not (resumed / "clusters.csv").exists()

    counted.update(pictures=0, stop=None)
    assert main(audit_args(folder, resumed)) == 0
    assert counted["pictures"] == 40 - first  # the finished pictures are not explained again
    printed = capsys.readouterr()
    assert (
        f"resuming: the maps of {first} of 40 pictures are kept in {resumed} and reused; computing the other "
        f"{40 - first}" in printed.err
    )
    assert f"({40 - first} maps computed, {first} reused from an earlier run" in printed.out

    counted.update(pictures=0)
    assert main(audit_args(folder, fresh)) == 0
    assert counted["pictures"] == 40
    assert "(40 maps computed, 0 reused" in capsys.readouterr().out
    for name in ("clusters.csv", "flags.json", "pictures.csv"):
        assert (resumed / name).read_bytes() == (fresh / name).read_bytes(), name

    counted.update(pictures=0)  # a third run: every map reused, the same files
    assert main(audit_args(folder, resumed)) == 0
    assert counted["pictures"] == 0 and "(0 maps computed, 40 reused" in capsys.readouterr().out
    assert (resumed / "flags.json").read_bytes() == (fresh / "flags.json").read_bytes()


def test_a_folder_of_other_settings_is_not_reused(folder, tmp_path, capsys):
    out = tmp_path / "o"
    assert main(audit_args(folder, out)) == 0
    assert main(audit_args(folder, out, "--method", "gradcam++")) == 2
    assert "holds results made with other settings" in capsys.readouterr().err


def test_a_target_from_the_command_line(folder, tmp_path, capsys):
    out = tmp_path / "o"
    assert main(audit_args(folder, out, "--target", "unit:1")) == 0
    with open(out / "pictures.csv", encoding="utf-8") as f:
        table = list(csv.DictReader(f))
    assert len(table) == 40 and {row["class_name"] for row in table} == {"circle", "cross"}  # grouped by label
    assert main(audit_args(folder, tmp_path / "p", "--target", "unit:one")) == 2
    assert "--target 'unit:one': the unit must be a whole number" in capsys.readouterr().err


@pytest.mark.slow  # starts a local Ray cluster of two workers (about 30 s)
def test_ray_audits_as_the_local_run(folder, tmp_path, capsys, monkeypatch):
    ray = pytest.importorskip("ray", reason="Ray is the [ray] extra; pip install -e .[dev] installs it")
    from camwidget.pipeline import on_ray

    came: list[int] = []  # each map that came back from Ray
    original = on_ray.explain_on_ray

    def counting(*args, **kwargs):
        for item in original(*args, **kwargs):
            came.append(item.index)
            yield item

    monkeypatch.setattr(on_ray, "explain_on_ray", counting)
    local, spread = tmp_path / "local", tmp_path / "ray"
    assert main(audit_args(folder, local)) == 0
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        assert main(audit_args(folder, spread, "--ray", "local")) == 0
    finally:
        ray.shutdown()
    assert "(40 maps computed, 0 reused" in capsys.readouterr().out
    assert sorted(came) == list(range(40))
    for name in ("clusters.csv", "flags.json"):
        assert (spread / name).read_text() == (local / name).read_text(), name
    with open(local / "pictures.csv", encoding="utf-8") as a, open(spread / "pictures.csv", encoding="utf-8") as b:
        rows = list(zip(csv.DictReader(a), csv.DictReader(b)))
    assert len(rows) == 40
    for mine, theirs in rows:
        assert (mine["picture"], mine["class_index"], mine["cluster"]) == (
            theirs["picture"],
            theirs["class_index"],
            theirs["cluster"],
        )
        assert float(mine["suspicion"]) == pytest.approx(float(theirs["suspicion"]), abs=1e-3)
