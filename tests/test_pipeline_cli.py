"""camwidget.pipeline.cli, the explain subcommand: its options (each bad one a single line and exit code 2),
the settings checked before anything is written, Ctrl-C keeping what is done, and its --help."""

from __future__ import annotations

import argparse
import json
import os

import pytest
from hypothesis import given
from hypothesis import strategies as st
from models import write_picture

import camwidget as cw
from camwidget import targets
from camwidget.command_line import main, parser
from camwidget.pipeline.cli import parse_target, positive_int, read_class_names
from camwidget.pipeline.model_file import UsageError


def test_a_typo_leaves_the_folder_as_it_was(model_file, tmp_path, capsys):
    photos = tmp_path / "photos"
    write_picture(photos / "a.png", 1)
    out = tmp_path / "out"
    assert main(["explain", str(model_file), str(photos), "--out", str(out), "--layer", "conv_bb"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "layer 'conv_bb' not found; closest: 'conv'" in err
    assert not out.exists()
    out.mkdir()
    assert main(["explain", str(model_file), str(photos), "--out", str(out), "--class", "7"]) == 2
    assert os.listdir(out) == []
    assert main(["explain", str(model_file), str(photos), "--out", str(out), "--layer", "conv"]) == 0


@pytest.mark.parametrize(
    "option, says",
    [
        (["--target", "unit:x"], "--target 'unit:x': the unit must be a whole number"),
        (["--target", "nosuchmodule:f"], "--target 'nosuchmodule:f': cannot import module 'nosuchmodule'"),
        (["--target", "os:nosuchfunction"], "module 'os' has no function 'nosuchfunction'"),
        (["--target", "plain"], "--target must be unit:I or module:function, not 'plain'"),
        (["--class-names", "missing.txt"], "--class-names 'missing.txt': No such file or directory"),
        (["--batch-size", "0"], "argument --batch-size: expected a positive whole number, not '0'"),
        (["--max-side", "big"], "argument --max-side: expected a positive whole number, not 'big'"),
        (["--method", "gradcamm"], "gradcamm"),
        (["--class", "9"], "class_index 9 is out of range"),
        (["--class", "x"], "argument --class: invalid int value: 'x'"),
        (["--nonsense"], "unrecognized arguments: --nonsense"),
    ],
)
def test_every_bad_option_gets_one_line_and_exit_code_2(option, says, model_file, tmp_path, capsys):
    photos = tmp_path / "photos"
    write_picture(photos / "a.png", 1)
    try:
        code = main(["explain", str(model_file), str(photos), "--out", str(tmp_path / "out"), *option])
    except SystemExit as exc:  # argparse's own: exit code 2 too
        code = exc.code
    err = capsys.readouterr().err
    assert code == 2 and says in err and err.count("\n") == 1 and "Traceback" not in err, err
    assert not (tmp_path / "out").exists()


def test_ctrl_c_in_process_keeps_what_is_done(model_file, tmp_path, capsys, monkeypatch):
    import camwidget.pipeline.report as report

    photos = tmp_path / "photos"
    for i in range(6):
        write_picture(photos / f"p{i}.png", i)
    original = report.Report.add
    calls = []

    def interrupted(self, item):
        calls.append(1)
        if len(calls) == 4:
            raise KeyboardInterrupt
        original(self, item)

    monkeypatch.setattr(report.Report, "add", interrupted)
    out = tmp_path / "out"
    assert main(["explain", str(model_file), str(photos), "--out", str(out), "--batch-size", "2"]) == 130
    err = capsys.readouterr().err
    assert err.strip().splitlines()[-1] == "interrupted: 3 of 6 done; run the same command again to resume"
    assert len(json.loads((out / "results.json").read_text())) == 3
    monkeypatch.setattr(report.Report, "add", original)
    assert main(["explain", str(model_file), str(photos), "--out", str(out)]) == 0
    assert "3 pictures in" in capsys.readouterr().out


def test_the_help_lists_every_method():
    from camwidget.command_line import parser

    explain = parser()._subparsers._group_actions[0].choices["explain"]
    text = " ".join(explain.format_help().split())
    assert all(name in text for name in cw.METHODS), [n for n in cw.METHODS if n not in text]
    assert "130 interrupted" in text and "2 bad usage" in text


def test_command_line_refuses_bad_input_in_one_line(tmp_path, capsys):
    folder = tmp_path  # a folder that exists: the model and --out are refused before any picture is read
    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("x")
    assert main(["explain", "whatever.keras", str(folder), "--out", str(not_a_folder / "sub")]) == 2
    assert "cannot write to the output folder" in capsys.readouterr().err
    bad = tmp_path / "bad.keras"
    bad.write_bytes(b"not a model")
    assert main(["explain", str(bad), str(folder), "--out", str(tmp_path / "o")]) == 2
    assert "could not load the model file" in capsys.readouterr().err
    assert main(["explain", str(tmp_path / "missing.keras"), str(folder), "--out", str(tmp_path / "o")]) == 2
    assert "does not exist" in capsys.readouterr().err
    text = parser().parse_args(["explain", "m.keras", "x", "--out", "o"])
    assert text.batch_size == 16 and text.method == "gradcam"
    helptext = [a for a in parser()._subparsers._group_actions[0].choices["explain"].format_help().splitlines()]
    assert any("gallery.html" in line for line in helptext) and any("--ray ADDRESS" in line for line in helptext)


@given(st.integers(-(10**12), 10**12))
def test_a_positive_whole_number_and_nothing_else(n):
    if n >= 1:
        assert positive_int(str(n)) == n
    else:
        with pytest.raises(argparse.ArgumentTypeError, match=f"expected a positive whole number, not '{n}'"):
            positive_int(str(n))


@pytest.mark.parametrize("text", ["", "1.5", "one", "1e3", "0x10"])
def test_anything_but_a_whole_number_is_refused(text):
    with pytest.raises(argparse.ArgumentTypeError, match="expected a positive whole number"):
        positive_int(text)


def test_target_as_typed(tmp_path, monkeypatch):
    (tmp_path / "my_targets.py").write_text(
        "from camwidget import targets\n\ndef second():\n    return targets.Unit(2)\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    assert parse_target(None) is None
    for typed, index in [("unit:3", 3), ("my_targets:second", 2)]:
        target = parse_target(typed)
        assert type(target) is targets.Unit and target.index == index, typed  # Units compare by identity


def test_class_names_one_a_line_blank_lines_left_out(tmp_path):
    (tmp_path / "names.txt").write_text("  cat \n\ndog\n \n fox\n", encoding="utf-8")
    assert read_class_names(str(tmp_path / "names.txt")) == ["cat", "dog", "fox"]
    assert read_class_names(None) is None
    (tmp_path / "latin1.txt").write_bytes("caf\xe9\n".encode("latin-1"))
    with pytest.raises(UsageError, match="not a UTF-8 text file"):
        read_class_names(str(tmp_path / "latin1.txt"))
