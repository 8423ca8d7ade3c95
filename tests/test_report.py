"""camwidget.pipeline.report: the gallery page says what it shows, in the order its Sort menu says."""

from __future__ import annotations

import os
import re

import cv2
import keras
import models
import numpy as np

import camwidget as cw
from camwidget import notes
from camwidget.command_line import main


def stand_in() -> keras.Model:
    model = models.one_conv(3)
    notes.mark(model)
    return model


def test_the_gallery_page_says_what_made_it_and_opens_in_its_menus_order(tmp_path, monkeypatch, capsys):
    here = os.path.dirname(__file__)
    (tmp_path / "report_models.py").write_text(
        f"import sys\nsys.path.insert(0, {here!r})\nfrom test_report import stand_in\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    rng = np.random.default_rng(0)
    for i in range(5):
        cv2.imwrite(str(tmp_path / f"p{i}.png"), rng.integers(0, 256, (32, 32, 3), dtype=np.uint8))
    out = tmp_path / "out"
    assert (
        main(
            [
                "explain",
                "report_models:stand_in",
                *[str(tmp_path / f"p{i}.png") for i in range(5)],
                "--out",
                str(out),
                "--layer",
                "conv",
                "--method",
                "layercam",
            ]
        )
        == 0
    ), capsys.readouterr().err
    page = (out / "gallery.html").read_text()
    about = dict(re.findall(r"<li><b>([^<]+)</b>: ([^<]*)</li>", page))
    assert about["note"] == notes.STAND_IN and about["model"] == "report_models:stand_in"
    assert about["method"] == "layercam" and about["layer"] == "conv" and about["camwidget"] == cw.__version__
    assert about["input size"] == "(None, 32, 32, 3)"
    scores = [float(s) for s in re.findall(r'class="card" data-score="([^"]+)"', page)]
    assert len(scores) == 5 and scores == sorted(scores, reverse=True)  # as "confidence, high first", selected
    assert re.search(r'<select id="sort">\s*<option value="score-desc">', page)
