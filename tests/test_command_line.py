"""camwidget.command_line, the entry point: every failure one line on stderr with its exit code, --version."""

from __future__ import annotations

import subprocess
import sys

import pytest
from models import write_picture

import camwidget
from camwidget.command_line import main


def test_bad_model_and_folders_get_one_line(model_file, tmp_path, capsys):
    bad = tmp_path / "bad.keras"
    bad.write_bytes(b"not a model")
    a_file = tmp_path / "file"
    a_file.write_text("x")
    for argv, says in [
        ([str(bad), str(tmp_path), "--out", str(tmp_path / "o")], "could not load the model file"),
        ([str(tmp_path / "missing.keras"), str(tmp_path), "--out", str(tmp_path / "o")], "does not exist"),
        (["nomodule:build", str(tmp_path), "--out", str(tmp_path / "o")], "cannot import module 'nomodule'"),
        ([str(model_file), str(tmp_path / "nothing"), "--out", str(tmp_path / "o")], "no such file or folder"),
        ([str(model_file), str(tmp_path), "--out", str(a_file / "sub")], "cannot write to the output folder"),
    ]:
        assert main(["explain", *argv]) == 2
        err = capsys.readouterr().err
        assert says in err and err.count("\n") == 1, err


def test_an_unexpected_error_is_one_line_with_a_way_to_the_traceback(model_file, tmp_path, capsys, monkeypatch):
    import camwidget.pipeline.report as report

    def broken(self, item):
        raise RuntimeError("disk on fire\nsecond line")

    monkeypatch.setattr(report.Report, "add", broken)
    write_picture(tmp_path / "photos" / "a.png", 1)
    argv = ["explain", str(model_file), str(tmp_path / "photos"), "--out", str(tmp_path / "out")]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unexpected RuntimeError: disk on fire (a bug" in err and "Traceback" not in err
    monkeypatch.setenv("CAMWIDGET_DEBUG", "1")
    with pytest.raises(RuntimeError, match="disk on fire"):
        main(argv)


def test_version_flag():
    """`camwidget --version` prints the version (python -m camwidget runs the same entry point)."""
    told = subprocess.run([sys.executable, "-m", "camwidget", "--version"], capture_output=True, text=True)
    assert told.returncode == 0 and camwidget.__version__ in told.stdout + told.stderr
