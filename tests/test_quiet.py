"""camwidget.quiet: TensorFlow imported, and its devices found, without its start-up lines on file descriptor 2;
what is written to stderr afterwards still shows. Each run is a fresh process (TensorFlow is imported once)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import camwidget

PACKAGE_ROOT = str(Path(camwidget.__file__).resolve().parent.parent)  # the camwidget these tests import

SCRIPT = textwrap.dedent(
    """
    import os, sys
    os.write(2, b"before\\n")
    from camwidget.quiet import quiet_tensorflow
    quiet_tensorflow()
    assert "tensorflow" in sys.modules and "keras" in sys.modules
    os.write(2, b"after, on the descriptor\\n")
    print("after, from Python", file=sys.stderr)
    print(os.environ["TF_CPP_MIN_LOG_LEVEL"])
    """
)
SHOWN = "before\nafter, on the descriptor\nafter, from Python\n"


def run(*path: str, **environ: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"} | environ
    env["PYTHONPATH"] = os.pathsep.join([*path, PACKAGE_ROOT])
    return subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, env=env, timeout=300)


def test_start_up_lines_written_to_the_descriptor_are_dropped_and_later_ones_kept(tmp_path):
    """A stand-in TensorFlow and Keras that write to descriptor 2 the way TensorFlow's C++ side does, on import
    and on device discovery: none of it shows, what comes after does."""
    for name in ("tensorflow", "keras"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "__init__.py").write_text(
            f"import os\nos.write(2, b'{name}: start-up line\\n')\n"
            "class config:\n    @staticmethod\n"
            f"    def list_physical_devices():\n        os.write(2, b'{name}: failed call to cuInit\\n')\n"
        )
    done = run(str(tmp_path))
    assert done.returncode == 0 and done.stderr == SHOWN, done.stderr
    assert done.stdout == "2\n"  # TF_CPP_MIN_LOG_LEVEL set where unset...
    kept = run(str(tmp_path), TF_CPP_MIN_LOG_LEVEL="0")
    assert kept.stderr == SHOWN and kept.stdout == "0\n"  # ...and left as the user set it


@pytest.mark.slow  # a fresh process imports TensorFlow (about 10 s)
def test_real_tensorflow_starts_without_a_line():
    """TensorFlow itself (on a machine without a GPU it says "Could not find cuda drivers" and "failed call to
    cuInit" when imported plainly with TF_CPP_MIN_LOG_LEVEL unset)."""
    done = run()
    assert done.returncode == 0 and done.stderr == SHOWN, done.stderr
