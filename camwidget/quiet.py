"""TensorFlow without its start-up log lines in the notebook.

TensorFlow's C++ side writes lines such as "oneDNN custom operations are on", "Could not find cuda drivers"
and "failed call to cuInit" straight to file descriptor 2 when it is imported and when it first looks for
devices, whatever TF_CPP_MIN_LOG_LEVEL says (absl logs them before reading it). A notebook shows each as a
red box. :func:`quiet_tensorflow` does both steps with descriptor 2 pointed at /dev/null, then puts it back,
so later warnings and errors, Python's and TensorFlow's, still show.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator


@contextlib.contextmanager
def _stderr_descriptor_silenced() -> Iterator[None]:
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(devnull)
        os.close(saved)


def quiet_tensorflow() -> None:
    """Import TensorFlow and Keras, and let TensorFlow find its devices, without the start-up log lines.

    Call it before the first ``import keras`` / ``import tensorflow`` (a later call does nothing more).

    Returns:
        None; TensorFlow is imported, quietly.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    with _stderr_descriptor_silenced():
        import keras  # noqa: F401
        import tensorflow as tf

        tf.config.list_physical_devices()  # device discovery logs here, not in the cell that first computes
