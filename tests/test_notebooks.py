"""The demo notebooks run top to bottom in a fresh kernel, offline, and the Binder setup holds."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
# VmHWM, the kernel's own peak: ru_maxrss would also count the test process the kernel was forked from
PEAK_CELL = (
    "print('PEAK_MB', int(next(l for l in open('/proc/self/status') if l.startswith('VmHWM')).split()[1]) / 1024)"
)


def execute(path: Path, tmp_path: Path, env: dict[str, str] | None = None) -> nbformat.NotebookNode:
    nb = nbformat.read(path, as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell(PEAK_CELL))
    with pytest.MonkeyPatch.context() as patch:  # the kernel inherits the environment, restored after
        for name, value in (env or {}).items():
            patch.setenv(name, value)
        NotebookClient(
            nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
        ).execute()
    return nb


def text_of(nb: nbformat.NotebookNode) -> str:
    return "".join(o.get("text", "") for c in nb.cells for o in c.get("outputs", []) if o.output_type == "stream")


def test_four_notebooks_exist_and_are_stored_without_outputs():
    assert [p.name for p in NOTEBOOKS] == [
        "01_vgg16_gradcam.ipynb",
        "02_composite_model.ipynb",
        "03_where_does_it_look.ipynb",
        "04_beyond_photos.ipynb",
    ]
    for path in NOTEBOOKS:
        nb = nbformat.read(path, as_version=4)
        for cell in nb.cells:
            if cell.cell_type == "code":
                assert cell.outputs == [] and cell.execution_count is None, path.name


# Binder's limit is 2 GB for the whole container; the Jupyter server beside the kernel takes about 0.12 GB.
KERNEL_BUDGET_MB = 1700


def peak_mb(text: str) -> float:
    return float(re.search(r"PEAK_MB ([\d.]+)", text).group(1))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
@pytest.mark.slow
def test_notebook_runs_offline_top_to_bottom(path, tmp_path):
    nb = execute(path, tmp_path)  # nbclient raises CellExecutionError on any error
    text = text_of(nb)
    assert "Traceback" not in text and "retracing" not in text
    errors = "".join(o.get("text", "") for c in nb.cells for o in c.get("outputs", []) if o.get("name") == "stderr")
    for line in ("absl", "I0000", "cuda", "oneDNN", "cpu_feature_guard"):
        assert line not in errors, f"TensorFlow's log reached the notebook: {errors[:500]}"
    assert "np.int64" not in text and "np.float" not in text  # numbers printed as people write them
    peak = peak_mb(text)
    print(f"{path.name}: peak memory {peak:.0f} MB")
    assert peak < KERNEL_BUDGET_MB, f"{path.name} peaked at {peak:.0f} MB (budget {KERNEL_BUDGET_MB} MB)"
    if path.name.startswith("01"):
        assert "using vgg16 with random weights instead" in text  # the offline sentence
        assert "largest difference from the hand-written version" in text
        diff = float(re.search(r"hand-written version: ([\d.e+-]+)", text).group(1))
        assert diff < 1e-3
    if path.name.startswith("04"):  # each model's map lands on what was put there
        share = lambda pattern: int(re.search(pattern, text).group(1))  # noqa: E731
        assert share(r"peaks within 16 steps of the event in (\d+)%") >= 80
        assert share(r"brighter inside the square than outside in (\d+)%") >= 80
        assert share(r"layercam .*brighter on the square than on average in (\d+)%") >= 80
    if path.name.startswith("03"):
        assert (
            "accuracy without the watermark: 50%" in text
            or "accuracy without the watermark: 4" in text
            or "accuracy without the watermark: 5" in text
        )
        # the audit finds the watermark unprompted, and flags nothing of the honest model
        assert "'cross' pictures" in text and "on the top-left corner" in text
        assert "flags for the honest model: 0" in text


@pytest.mark.parametrize(
    "notebook, variable, include_top",
    [(0, "CAMWIDGET_VGG16_WEIGHTS", True), (1, "CAMWIDGET_VGG16_NOTOP_WEIGHTS", False)],
    ids=["01", "02"],
)
@pytest.mark.slow
def test_notebook_loads_a_weights_file(notebook, variable, include_top, tmp_path):
    """The path Binder takes (real weights, in the layout Keras downloads them in), with a file written
    here from a random-weight VGG16; and it fits Binder too."""
    import keras
    from models import write_keras_download_layout

    keras.utils.set_random_seed(5)
    weights = tmp_path / f"vgg16_weights_tf_dim_ordering_tf_kernels{'' if include_top else '_notop'}.h5"
    write_keras_download_layout(keras.applications.VGG16(weights=None, include_top=include_top), weights)
    nb = execute(NOTEBOOKS[notebook], tmp_path, env={variable: str(weights)})
    text = text_of(nb)
    assert f"Loaded vgg16 with pretrained weights from {weights}" in text
    peak = peak_mb(text)
    print(f"{NOTEBOOKS[notebook].name} with a weights file: peak memory {peak:.0f} MB")
    assert peak < KERNEL_BUDGET_MB


def colab_cell(path: Path) -> str:
    cell = nbformat.read(path, as_version=4).cells[1]
    assert cell.cell_type == "code" and "install_if_missing()" in cell.source
    return cell.source


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_each_notebook_opens_in_colab_and_installs_camwidget_only_where_missing(path, monkeypatch):
    first = nbformat.read(path, as_version=4).cells[0].source
    assert f"https://colab.research.google.com/github/camwidget/camwidget/blob/main/notebooks/{path.name}" in first
    installs: list[list[str]] = []
    monkeypatch.setattr(subprocess, "run", lambda args, **kwargs: installs.append(args))
    namespace: dict = {}
    exec(colab_cell(path), namespace)  # here camwidget is installed: nothing to do
    assert installs == []
    namespace["install_if_missing"]("a_module_that_is_not_installed", "its-package")
    assert installs == [[sys.executable, "-m", "pip", "install", "-q", "its-package"]]
    assert 'source="camwidget @ git+https://github.com/camwidget/camwidget"' in colab_cell(path)


def test_binder_files():
    requirements = (ROOT / "binder" / "requirements.txt").read_text().split()
    assert "." in requirements
    assert re.fullmatch(r"python-3\.\d+", (ROOT / "binder" / "runtime.txt").read_text().strip())
    readme = (ROOT / "README.md").read_text()
    assert "?urlpath=lab/tree/notebooks/01_vgg16_gradcam.ipynb" in readme.split("\n\n")[1]


@pytest.mark.slow
def test_repo2docker_accepts_the_repository():
    done = subprocess.run(["repo2docker", "--no-build", str(ROOT)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "requirements.txt" in done.stdout and "runtime.txt" not in done.stderr


@pytest.mark.slow
@pytest.mark.network  # resolves binder/requirements.txt against PyPI
def test_binder_requirements_install_into_a_fresh_venv(tmp_path):
    """What Binder installs resolves as a whole (pip's resolver, in a fresh venv, every pin against the index),
    and camwidget built from this folder (the requirements' "."), beside the pinned TensorFlow and Keras this
    machine has, takes the lean loading path. Installing TensorFlow again would take 100 s for no more news."""
    import json as json_

    pins = {
        line.split("~=")[0]: line.split("~=")[1]
        for line in (ROOT / "binder" / "requirements.txt").read_text().split()
        if "~=" in line
    }
    import keras as keras_
    import tensorflow as tf_

    assert tf_.__version__.startswith(pins["tensorflow"].rsplit(".", 1)[0]) and keras_.__version__.startswith(
        pins["keras"].rsplit(".", 1)[0]
    )
    fresh = tmp_path / "fresh"
    subprocess.run([sys.executable, "-m", "venv", str(fresh)], check=True, timeout=300)
    report = tmp_path / "report.json"
    resolve = subprocess.run(
        [
            str(fresh / "bin" / "python"),
            "-m",
            "pip",
            "install",
            "-q",
            "--dry-run",
            "--report",
            str(report),
            "-r",
            "binder/requirements.txt",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert resolve.returncode == 0, resolve.stderr[-3000:]
    chosen = {
        item["metadata"]["name"].lower(): item["metadata"]["version"]
        for item in json_.loads(report.read_text())["install"]
    }
    assert chosen["tensorflow"].startswith("2.21.") and chosen["keras"].startswith("3.15.") and "camwidget" in chosen
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)], check=True, timeout=300)
    python = venv / "bin" / "python"
    install = subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "--no-deps", "."],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert install.returncode == 0, install.stderr[-3000:]
    # Binder's environment must take the lean loading path (the one that fits 2 GB), not Keras's fallback.
    check_code = """
import camwidget, camwidget.explorer.widget, jupyterlab, skimage, keras
from camwidget.demo import loading
model = loading.build_unfilled(keras.applications.VGG16, weights=None, include_top=False, input_shape=(32, 32, 3))
print(camwidget.__version__, len(loading.unfilled_variables(model)) == len(model.variables) > 0, camwidget.__file__)
"""
    check = subprocess.run([str(python), "-c", check_code], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert check.returncode == 0, check.stderr[-3000:]
    version = {}
    exec((ROOT / "camwidget" / "version.py").read_text(), version)
    assert check.stdout.split()[:2] == [version["__version__"], "True"]
    assert check.stdout.split()[2].startswith(str(venv))  # the camwidget built here, not this checkout's
