"""Never lose a user's file: the command line, its report and the gallery, given pictures of every name and
place. Three guarantees (camwidget.pipeline.outputs): every file a run writes is inside --out, none is an input, and
two pictures never share an output. Each example of issue 25 has a test; Hypothesis tries names and trees."""

from __future__ import annotations

import csv
import hashlib
import html.parser
import json
import os
import signal
import subprocess
import sys
import tempfile
import time

import cv2
import keras
import models
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from models import write_picture

import camwidget as cw
from camwidget.command_line import main
from camwidget.inputs import preprocess as preprocessing
from camwidget.inputs.images import read_picture
from camwidget.pipeline.batch import Explained, find_pictures
from camwidget.pipeline.outputs import OutputFolder, UnsafeOutput, html_text
from camwidget.pipeline.report import Report, gallery_html


def snapshot(root) -> dict[str, str]:
    """Every file under root (symlinks not followed) -> its content's hash."""
    found = {}
    for folder, _, files in os.walk(root):
        for name in files:
            path = os.path.join(folder, name)
            if not os.path.islink(path):
                found[path] = hashlib.sha1(open(path, "rb").read()).hexdigest()
    return found


def expected_cam(model, path) -> np.ndarray:
    pixels = read_picture(str(path)).pixels
    x, _ = preprocessing.model_input(pixels, (32, 32, 3), 1024, preprocessing.resolve(model, None).fn)
    return cw.compute_cam(model, x)[0]


def check_run(out, model, pictures: list) -> list[dict]:
    """The run's tables, each picture once with its own overlay and its own map, equal to compute_cam's."""
    table = json.loads((out / "results.json").read_text())
    assert sorted(os.path.realpath(r["path"]) for r in table) == sorted(os.path.realpath(p) for p in pictures)
    maps = np.load(out / "maps.npz")
    assert len({r["output"] for r in table}) == len(table) == len(maps.files)
    assert len({r["overlay"] for r in table}) == len(table)
    for record in table:
        np.testing.assert_allclose(maps[record["output"]], expected_cam(model, record["path"]), atol=1e-5)
        overlay = cv2.imread(str(out / record["overlay"]))
        assert overlay.shape[:2] == cv2.imread(record["path"]).shape[:2]
    assert len(os.listdir(out / ".camwidget")) == 2 * len(table) + 1  # a record and a map each, and run.json
    return table


# -- the files: nothing outside --out, nothing over an input, nothing lost ---------------------------------


def test_absolute_input_paths_are_never_overwritten(model_file, tmp_path, monkeypatch, capsys):
    """The issue's first example: absolute paths to pictures in a photo folder, --out relative."""
    photos = tmp_path / "home" / "me" / "photos"
    write_picture(photos / "a.png", 1)
    write_picture(photos / "b.jpg", 2)
    before = snapshot(tmp_path / "home")
    monkeypatch.chdir(tmp_path)
    code = main(["explain", str(model_file), str(photos / "a.png"), str(photos / "b.jpg"), "--out", "results"])
    assert code == 0, capsys.readouterr().err
    assert snapshot(tmp_path / "home") == before  # not one byte of the photo folder changed, nothing added
    assert sorted(os.listdir(tmp_path / "results" / "overlays")) == ["a.png", "b.png"]
    check_run(tmp_path / "results", keras.models.load_model(model_file), [photos / "a.png", photos / "b.jpg"])


def test_pictures_with_the_same_name_each_keep_their_own_results(model_file, tmp_path, capsys):
    """Same name in two folders, same stem with two extensions, names the old state files flattened alike."""
    root = tmp_path / "in"
    paths = [
        root / "a/imgs/cat.png",
        root / "b/imgs/cat.png",
        root / "cat.png",
        root / "cat.jpg",
        root / "a__b.png",
        root / "a/b.png",
        root / "CAT.png",
    ]
    for seed, path in enumerate(paths):
        write_picture(path, seed)
    out = tmp_path / "out"
    inputs = [str(root / "a/imgs"), str(root / "b/imgs"), *map(str, paths[2:])]
    assert main(["explain", str(model_file), *inputs, "--out", str(out)]) == 0, capsys.readouterr().err
    table = check_run(out, keras.models.load_model(model_file), paths)
    names = {os.path.relpath(r["path"], root): r["output"] for r in table}
    # readable: the folders kept, a short suffix only where two would meet
    assert names["a/imgs/cat.png"] == "a/imgs/cat" and names["b/imgs/cat.png"] == "b/imgs/cat"
    assert names["cat.png"] == "cat" and names["cat.jpg"].startswith("cat-") and len(names["cat.jpg"]) == 10
    assert names["a__b.png"] == "a__b" and names["a/b.png"] == "a/b"
    assert names["CAT.png"].startswith("CAT-")  # the same file as cat.png on macOS and Windows


def test_relative_dotdot_symlinked_and_single_inputs(model_file, tmp_path, monkeypatch, capsys):
    elsewhere = tmp_path / "elsewhere" / "pics"
    write_picture(elsewhere / "x.png", 3)
    write_picture(elsewhere / "deep" / "y.png", 4)
    (tmp_path / "link").symlink_to(elsewhere)
    work = tmp_path / "work" / "sub"
    work.mkdir(parents=True)
    monkeypatch.chdir(work)
    before = snapshot(tmp_path / "elsewhere")
    out = tmp_path / "work" / "out"
    args = ["../../elsewhere/pics/x.png", str(tmp_path / "link"), "../../link/deep/y.png"]
    assert main(["explain", str(model_file), *args, "--out", "../out"]) == 0, capsys.readouterr().err
    assert snapshot(tmp_path / "elsewhere") == before
    check_run(out, keras.models.load_model(model_file), [elsewhere / "x.png", elsewhere / "deep" / "y.png"])
    # one file given alone
    assert main(["explain", str(model_file), str(elsewhere / "x.png"), "--out", str(tmp_path / "one")]) == 0
    assert os.listdir(tmp_path / "one" / "overlays") == ["x.png"]


def test_an_output_folder_inside_the_input_folder_is_never_read_as_pictures(model_file, tmp_path, capsys):
    photos = tmp_path / "photos"
    for i in range(3):
        write_picture(photos / f"p{i}.png", i)
    out = photos / "report"
    for _ in range(2):
        assert main(["explain", str(model_file), str(photos), "--out", str(out)]) == 0, capsys.readouterr().err
        table = json.loads((out / "results.json").read_text())
        assert sorted(r["file"] for r in table) == ["p0.png", "p1.png", "p2.png"]
    assert "0 pictures in" in capsys.readouterr().out  # the rerun found nothing new: not its own overlays


def test_an_input_where_an_output_would_go_is_never_overwritten(model_file, tmp_path, capsys):
    """A picture that lies where its overlay would be written (out/overlays/cat.png, explained into out)."""
    out = tmp_path / "out"
    picture = out / "overlays" / "cat.png"
    write_picture(picture, 1)
    content = picture.read_bytes()
    assert main(["explain", str(model_file), str(picture), "--out", str(out)]) == 0, capsys.readouterr().err
    assert picture.read_bytes() == content
    (record,) = json.loads((out / "results.json").read_text())
    assert record["overlay"].startswith("overlays/cat-") and (out / record["overlay"]).is_file()
    with pytest.raises(UnsafeOutput, match="one of the pictures given as input"):
        OutputFolder.of(out, [str(picture)]).path("overlays", "cat.png")


def test_a_symlink_inside_the_output_folder_never_leads_outside(model_file, tmp_path, capsys):
    photos = tmp_path / "photos"
    write_picture(photos / "cat.png", 1)
    before = snapshot(photos)
    out = tmp_path / "out"
    out.mkdir()
    (out / "overlays").symlink_to(photos)  # someone (or something) made overlays/ point at the photos
    code = main(["explain", str(model_file), str(photos), "--out", str(out)])
    assert code == 2 and "outside the output folder" in capsys.readouterr().err
    assert snapshot(photos) == before


def test_any_name_a_file_system_allows(model_file, tmp_path, capsys):
    names = [
        "with space.png",
        "quote'\"s.png",
        "new\nline.png",
        "ünïcødé 猫.png",
        "file.png",
        "allow_pickle.png",
        "<img src=x onerror=alert(1)>.png",
        "=HYPERLINK(1).png",
        "+1.png",
        "-1.png",
        "@x.png",
        "#?%.png",
    ]
    root = tmp_path / "odd"
    for seed, name in enumerate(names):
        write_picture(root / name, seed)
    out = tmp_path / "out"
    assert main(["explain", str(model_file), str(root), "--out", str(out)]) == 0, capsys.readouterr().err
    table = check_run(out, keras.models.load_model(model_file), [root / n for n in names])
    assert sorted(r["file"] for r in table) == sorted(names)  # results.json keeps the exact names
    rows = list(csv.DictReader(open(out / "results.csv", encoding="utf-8", newline="")))
    for row in rows:
        assert not row["file"].startswith(("=", "+", "-", "@", "\t", "\r")), row["file"]
    assert {row["file"].lstrip("'") for row in rows} == set(names)
    page = (out / "gallery.html").read_text(encoding="utf-8")
    assert only_the_pages_own_markup(page) and page.count('<div class="card"') == len(names)


# -- Hypothesis: any tree, any names ----------------------------------------------------------------------

PART = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="/\0"), min_size=1, max_size=12).filter(
    lambda p: p not in (".", "..") and len(p.encode()) < 100
)
TREE = st.lists(
    st.tuples(st.lists(PART, max_size=2), PART, st.sampled_from([".png", ".jpg", ".PNG"])), min_size=1, max_size=6
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(tree=TREE, how=st.sampled_from(["folder", "files", "relative", "absolute-out-inside"]))
def test_any_tree_keeps_the_three_guarantees(tree, how):
    """Pictures in any folders under any names, given as a folder, as files, by ../ paths, or with --out inside
    the input folder: after a run's report is written (and written again, as a resume), every file written is
    inside --out, no input changed, and each picture has its own overlay, map and record."""
    with tempfile.TemporaryDirectory() as tmp:
        root = os.path.join(tmp, "in")
        paths = []
        for folders, stem, suffix in tree:
            path = os.path.join(root, *folders, stem + suffix)
            if any(os.path.realpath(path) == os.path.realpath(p) for p in paths) or os.path.isdir(path):
                continue
            try:
                os.makedirs(os.path.dirname(path), exist_ok=True)
                with open(path, "wb") as f:
                    f.write(b"picture")
            except OSError:  # a folder where a file is, or a name this file system refuses
                continue
            paths.append(path)
        if not paths:
            return
        out = os.path.join(root, "out") if how == "absolute-out-inside" else os.path.join(tmp, "out")
        given_ = {"folder": [root], "files": paths, "relative": [os.path.relpath(p) for p in paths]}.get(how, [root])
        before = snapshot(tmp)
        folder = OutputFolder.of(out)
        pictures = find_pictures(given_, exclude=folder.excluded_from_inputs)
        assert len(pictures) == len({os.path.realpath(p) for p in paths})
        for _ in range(2):  # a run, then a resumed one
            report = Report(out, inputs=[*given_, *(p.source for p in pictures)])
            report.assign(pictures)
            for p in pictures:
                if not report.done(p):
                    cam = np.full((2, 2), (p.index + 1) / 100, np.float32)
                    report.add(
                        Explained(
                            p.index,
                            p.name,
                            [(0, "c", 1.0)],
                            0,
                            cam,
                            np.zeros((3, 3, 3), np.uint8),
                            stats={"centre_share": 0.5},
                            key=p.key,
                        )
                    )
            report.finish()
        after = snapshot(tmp)
        real_out = os.path.realpath(out)
        changed = {p for p in after if before.get(p) != after[p]} | (set(before) - set(after))
        assert all(os.path.commonpath([os.path.realpath(p), real_out]) == real_out for p in changed), changed
        table = json.loads(open(os.path.join(out, "results.json"), encoding="utf-8").read())
        assert len(table) == len(pictures) == len({r["overlay"] for r in table}) == len({r["output"] for r in table})
        maps = np.load(os.path.join(out, "maps.npz"))
        for r in table:
            assert float(maps[r["output"]][0, 0]) == pytest.approx((r["index"] + 1) / 100)
            assert os.path.realpath(os.path.join(out, r["overlay"])) not in {os.path.realpath(p) for p in paths}


# -- a fresh process, as a user runs it: one line for an error; Ctrl-C keeps what is done ---------------------


@pytest.mark.slow
def test_a_fresh_process_prints_only_the_error_and_ctrl_c_keeps_what_is_done(model_file, tmp_path):
    """As a user sees it: no TensorFlow start-up lines before an error; Ctrl-C ends with one line, exit 130,
    no traceback, the finished pictures kept, and the same command finishes the rest."""
    photos = tmp_path / "photos"
    for i in range(300):
        write_picture(photos / f"p{i:03d}.png", i)
    out = tmp_path / "out"
    command = [
        sys.executable,
        "-m",
        "camwidget",
        "explain",
        str(model_file),
        str(photos),
        "--out",
        str(out),
    ]
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    typo = subprocess.run([*command, "--layer", "conv_bb"], capture_output=True, text=True, env=env, timeout=120)
    assert typo.returncode == 2 and typo.stderr.strip().splitlines() == [
        "camwidget: layer 'conv_bb' not found; closest: 'conv'. Spatial layers of this model: 'conv'"
    ], typo.stderr
    run = subprocess.Popen(
        [*command, "--batch-size", "1"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )
    state = out / ".camwidget"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not (state.is_dir() and len(os.listdir(state)) > 8):
        time.sleep(0.05)
    run.send_signal(signal.SIGINT)
    _, err = run.communicate(timeout=120)
    assert run.returncode == 130 and "Traceback" not in err, err
    last = err.strip().splitlines()[-1]
    assert last.startswith("interrupted: ") and last.endswith(" of 300 done; run the same command again to resume")
    done = int(last.split()[1])
    assert 0 < done < 300 and len(json.loads((out / "results.json").read_text())) == done
    again = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    assert again.returncode == 0 and f"{300 - done} pictures in" in again.stdout, again.stderr
    assert len(json.loads((out / "results.json").read_text())) == 300


# -- HTML and tables that cannot be turned against the reader ----------------------------------------------


class _Structure(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.found: list[tuple[str, tuple[str, ...]]] = []

    def handle_starttag(self, tag, attrs):
        self.found.append((tag, tuple(sorted(name for name, _ in attrs))))


def elements_and_attributes(page: str) -> list[tuple[str, tuple[str, ...]]]:
    """The page's elements and their attribute names, in order: what data could add if it were not escaped."""
    parser = _Structure()
    parser.feed(page)
    return parser.found


PAGE_TAGS = {
    "html",
    "head",
    "meta",
    "title",
    "style",
    "body",
    "h3",
    "ul",
    "li",
    "b",
    "label",
    "select",
    "option",
    "div",
    "img",
    "script",
}
PAGE_ATTRIBUTES = {
    "charset",
    "class",
    "id",
    "value",
    "src",
    "alt",
    "data-score",
    "data-class",
    "data-centre",
    "data-peak",
    "data-large",
}


def only_the_pages_own_markup(page: str) -> bool:
    """Every element and attribute is one the gallery page writes itself (none came from a name)."""
    found = elements_and_attributes(page)
    return all(tag in PAGE_TAGS and set(attrs) <= PAGE_ATTRIBUTES for tag, attrs in found)


EVIL = '<img src=x onerror="alert(1)">\'"&'


def test_the_gallery_page_takes_no_element_or_attribute_from_data():
    record = {
        "file": EVIL,
        "index": 0,
        "key": "file:/x",
        "output": "x",
        "overlay": "overlays/" + EVIL + ".png",
        "thumbnail": "data:image/jpeg;base64,AA",
        "top": [{"class": 0, "name": EVIL, "score": 0.5}],
        "centre_share": 0.2,
        "peak_y": 0.1,
        "peak_x": 0.3,
    }
    broken = {"file": EVIL, "index": 1, "key": "file:/y", "output": "y", "error": EVIL}
    page = gallery_html([record, broken], details=[("model", EVIL)])
    plain = gallery_html(
        [
            dict(record, file="a", overlay="overlays/a.png", top=[{"class": 0, "name": "c", "score": 0.5}]),
            dict(broken, file="b", error="e"),
        ],
        details=[("model", "m")],
    )
    assert elements_and_attributes(page) == elements_and_attributes(plain) and only_the_pages_own_markup(page)
    assert html_text(EVIL) in page


def test_the_gallery_widget_status_is_escaped(tmp_path):
    root = tmp_path / "pics"
    write_picture(root / "good.png", 1)
    (root / f"{EVIL.replace('/', '_')}.png").write_bytes(b"not a picture")
    gallery = cw.Gallery(models.one_conv(7), str(root))
    assert "skipped 1" in gallery.status_text
    assert elements_and_attributes(gallery._status.value) == []
    assert "<img" not in gallery._status.value


def test_files_respect_the_umask(model_file, tmp_path, capsys):
    photos = tmp_path / "photos"
    write_picture(photos / "a.png", 1)
    old = os.umask(0o022)
    try:
        assert main(["explain", str(model_file), str(photos), "--out", str(tmp_path / "out")]) == 0
    finally:
        os.umask(old)
    for name in ("gallery.html", "results.csv", "results.json", "maps.npz", "overlays/a.png"):
        assert (os.stat(tmp_path / "out" / name).st_mode & 0o777) == 0o644, name


# -- the same answers everywhere --------------------------------------------------------------------------


def test_a_gallery_picture_opens_with_the_same_target_and_output(tmp_path):
    from camwidget import targets

    root = tmp_path / "pics"
    for i in range(2):
        write_picture(root / f"p{i}.png", i)
    model = models.one_conv(7)
    first = read_picture(str(root / "p0.png")).pixels
    x0, _ = preprocessing.model_input(first, (32, 32, 3), 1024, preprocessing.resolve(model, None).fn)
    other = (int(np.argmax(model(x0).numpy()[0])) + 1) % 3  # not the top class: the target matters
    gallery = cw.Gallery(model, str(root), target=targets.ClassScore(other), layer="conv", sort="order given")
    try:
        explorer = gallery.explore(0)
        item = gallery.items[0]
        assert item.name == "p0.png"
        wanted = cw.compute_cam(model, x0, target=targets.ClassScore(other), layer="conv")[0]
        assert not np.allclose(wanted, cw.compute_cam(model, x0, layer="conv")[0], atol=1e-3)
        np.testing.assert_allclose(item.cam, wanted, atol=1e-5)
        np.testing.assert_allclose(explorer.cam, wanted, atol=1e-5)
    finally:
        if gallery.explorer is not None:
            gallery.explorer.close()
