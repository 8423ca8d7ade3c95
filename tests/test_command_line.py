"""camwidget.command_line, the entry point: every failure one line on stderr with its exit code, --version."""

from __future__ import annotations

import subprocess
import sys

import pytest
from models import write_picture

import camwidget
from camwidget.command_line import main
from camwidget.errors import CAMError
from camwidget.pipeline import cli
from camwidget.pipeline.model_file import UsageError


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


@pytest.mark.parametrize(
    "raised, code, line",
    [  # the exit codes --help lists: 2 bad usage, 130 interrupted; each failure one line on stderr
        (UsageError("--layer x: no such layer\nmore"), 2, "camwidget: --layer x: no such layer"),
        (CAMError("class_index 9 is out of range\nmore"), 2, "camwidget: class_index 9 is out of range"),
        (FileNotFoundError("no such file or folder: 'x'"), 2, "camwidget: no such file or folder: 'x'"),
        (NotADirectoryError("'x' is not a folder"), 2, "camwidget: 'x' is not a folder"),
        (TypeError("batch_size must be an int"), 2, "camwidget: batch_size must be an int"),
        (KeyboardInterrupt(), 130, "interrupted; run the same command again to resume"),
    ],
)
def test_each_failure_has_its_exit_code_and_one_line(raised, code, line, monkeypatch, capsys):
    def fails(args):
        raise raised

    monkeypatch.setattr(cli, "explain_command", fails)
    assert main(["explain", "m.keras", "x", "--out", "o"]) == code
    captured = capsys.readouterr()
    assert captured.err == line + "\n" and captured.out == ""


@pytest.mark.parametrize("returned", [0, 1])
def test_the_commands_exit_code_is_the_processs(returned, monkeypatch):
    monkeypatch.setattr(cli, "explain_command", lambda args: returned)
    assert main(["explain", "m.keras", "x", "--out", "o"]) == returned


def test_a_command_is_required_and_the_help_lists_both(capsys):
    with pytest.raises(SystemExit) as ended:
        main([])
    err = capsys.readouterr().err
    assert ended.value.code == 2 and err.count("\n") == 1 and "COMMAND" in err
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    assert "explain" in out and "audit" in out
