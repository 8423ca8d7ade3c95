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


def test_a_picture_changed_since_its_map_was_kept_is_explained_again(tmp_path, model_file, capsys):
    """A resumed run (explain or audit, both keep maps through Report) skips a picture only if its file is as it
    was: one overwritten with another photo since is explained again, its map that of the new photo; the
    unchanged one is kept, not explained again."""
    from camwidget.pipeline.outputs import state_key

    folder, out, fresh = tmp_path / "in", tmp_path / "out", tmp_path / "fresh"
    models.write_picture(folder / "a.png", 1)
    models.write_picture(folder / "b.png", 2)

    def kept_map(where, name):
        key = state_key("file:" + os.path.realpath(folder / name))
        return np.load(where / ".camwidget" / f"{key}.npy")

    assert main(["explain", str(model_file), str(folder), "--out", str(out)]) == 0, capsys.readouterr().err
    a_before, b_before = kept_map(out, "a.png"), kept_map(out, "b.png")
    b_file = (out / ".camwidget" / f"{state_key('file:' + os.path.realpath(folder / 'b.png'))}.npy").stat()
    models.write_picture(folder / "a.png", 7)  # another photo under the same name
    stat = (folder / "a.png").stat()
    os.utime(folder / "a.png", ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # even within one clock tick
    assert main(["explain", str(model_file), str(folder), "--out", str(out)]) == 0, capsys.readouterr().err
    assert main(["explain", str(model_file), str(folder), "--out", str(fresh)]) == 0, capsys.readouterr().err
    np.testing.assert_array_equal(kept_map(out, "a.png"), kept_map(fresh, "a.png"))
    assert not np.array_equal(kept_map(out, "a.png"), a_before)
    np.testing.assert_array_equal(kept_map(out, "b.png"), b_before)
    again = (out / ".camwidget" / f"{state_key('file:' + os.path.realpath(folder / 'b.png'))}.npy").stat()
    assert again.st_mtime_ns == b_file.st_mtime_ns  # b was not written again: it was not explained again
