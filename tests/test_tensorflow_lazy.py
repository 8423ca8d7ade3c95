"""camwidget.tensorflow_lazy: TensorFlow imported on the first attribute read, not before; a clear error where
it cannot be imported."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import keras
import pytest

import camwidget
from camwidget.errors import CAMError
from camwidget.tensorflow_lazy import _LazyTensorFlow, tf

PACKAGE_ROOT = str(Path(camwidget.__file__).resolve().parent.parent)  # the camwidget these tests import


def test_tensorflow_is_imported_on_the_first_attribute_read_and_then_is_the_module(tmp_path):
    """In a fresh process, with a stand-in `tensorflow` that records its import."""
    (tmp_path / "tensorflow").mkdir()
    (tmp_path / "tensorflow" / "__init__.py").write_text("import builtins\nbuiltins.IMPORTED = True\nconstant = 'c'\n")
    script = textwrap.dedent(
        """
        import builtins, sys
        from camwidget.tensorflow_lazy import tf
        assert not hasattr(builtins, "IMPORTED") and "tensorflow" not in sys.modules, "imported before use"
        assert repr(tf) == "<tensorflow, imported on first use>"
        assert tf.constant == "c" and builtins.IMPORTED and sys.modules["tensorflow"].constant == "c"
        assert repr(tf) == repr(sys.modules["tensorflow"])
        """
    )
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tmp_path), PACKAGE_ROOT]))
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr


def test_where_tensorflow_cannot_be_imported_the_error_says_so_and_names_the_backend(monkeypatch):
    monkeypatch.setattr(_LazyTensorFlow, "_module", None)
    monkeypatch.setitem(sys.modules, "tensorflow", None)  # `import tensorflow` raises ImportError
    with pytest.raises(CAMError) as caught:
        tf.constant  # noqa: B018
    message = str(caught.value)
    assert "runs on TensorFlow, which cannot be imported here" in message and "pip install tensorflow" in message
    assert f"Keras runs on {keras.backend.backend()!r}" in message
