"""The demo notebooks as the docs site shows them: run top to bottom here, offline, and stored with their outputs
in docs/notebooks/, which mkdocs-jupyter renders without running anything (so `mkdocs build --strict` stays a
matter of seconds, with no kernel and no network).

    python docs/execute_notebooks.py      # about 4 minutes on 2 cores; rerun whenever notebooks/ changes

Offline, VGG16's ImageNet weights cannot be downloaded: notebooks 01 and 02 then continue with random weights
from a fixed seed and say so in their first output (the docs page says it too); 03 and 04 train their models
in the notebook. The explorer shows as its still picture (the ``image/png`` of its bundle): the widget state is
left out, because a static page has no kernel for the controls to talk to. tests/test_docs.py checks that these
copies hold the same code as notebooks/ and that the rendered pages show the pictures.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

DOCS = Path(__file__).resolve().parent
SOURCES = DOCS.parent / "notebooks"
RENDERED = DOCS / "notebooks"


def execute(source: Path, target: Path) -> float:
    """Run `source` in a fresh kernel in a throwaway folder and write it with its outputs to `target`.

    Args:
        source: a notebook of notebooks/, stored without outputs.
        target: where its executed copy goes.

    Returns:
        The seconds the run took.

    Raises:
        nbclient.exceptions.CellExecutionError: a cell failed (nothing is written then).
    """
    nb = nbformat.read(source, as_version=4)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as folder:  # files a notebook saves (cat_cam.png) land here
        NotebookClient(nb, timeout=900, kernel_name="python3", resources={"metadata": {"path": folder}}).execute()
    nb.metadata.pop("widgets", None)  # no kernel behind a static page: the still pictures stand in
    target.parent.mkdir(exist_ok=True)
    nbformat.write(nb, target)
    return time.perf_counter() - started


def main(names: list[str]) -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    # the kernels import camwidget from this checkout, whatever else is installed
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(DOCS.parent), os.environ.get("PYTHONPATH")]))
    sources = sorted(SOURCES.glob("*.ipynb"))
    for source in sources:
        if names and not any(name in source.name for name in names):
            continue
        seconds = execute(source, RENDERED / source.name)
        print(f"{source.name}: {seconds:.0f} s -> {(RENDERED / source.name).relative_to(DOCS.parent)}")


if __name__ == "__main__":
    main(sys.argv[1:])
