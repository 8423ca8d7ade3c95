"""The release files and metadata a stranger looks at before installing: license, changelog, citation, PyPI page."""

import re
import subprocess
from pathlib import Path

import pytest
import tomllib

import camwidget

ROOT = Path(__file__).resolve().parent.parent
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def test_license_is_mit_as_the_metadata_says():
    """LICENSE exists and is the MIT text that pyproject and the classifiers name."""
    text = (ROOT / "LICENSE").read_text()
    assert text.startswith("MIT License") and "the camwidget developers" in text
    assert "WITHOUT WARRANTY OF ANY KIND" in text
    assert PROJECT["license"] == {"text": "MIT"}
    assert "License :: OSI Approved :: MIT License" in PROJECT["classifiers"]


def test_changelog_keeps_a_changelog():
    """An empty Unreleased section on top, then the released versions with their link references."""
    text = (ROOT / "CHANGELOG.md").read_text()
    sections = re.findall(r"^## \[([^\]]+)\]", text, flags=re.M)
    assert sections[0] == "Unreleased" and camwidget.__version__ in sections
    unreleased = text.split("## [Unreleased]", 1)[1].split("\n## [", 1)[0]
    assert unreleased.strip() == ""
    assert all(re.search(rf"^\[{re.escape(s)}\]: https://", text, flags=re.M) for s in sections)


def test_citation_is_valid_cff():
    """CITATION.cff has the keys CFF 1.2.0 requires (cff-version, message, title, authors)."""
    yaml = pytest.importorskip("yaml")
    cff = yaml.safe_load((ROOT / "CITATION.cff").read_text())
    assert cff["cff-version"] == "1.2.0"
    assert cff["message"] and cff["title"] and cff["authors"]
    assert cff["license"] == "MIT" and cff["repository-code"].startswith("https://github.com/")


def test_pypi_metadata():
    """Classifiers, keywords and the project URLs people look for on PyPI."""
    classifiers = set(PROJECT["classifiers"])
    for wanted in (
        "Framework :: Jupyter :: JupyterLab :: Extensions",
        "Intended Audience :: Science/Research",
        "Intended Audience :: Education",
        "Topic :: Scientific/Engineering :: Artificial Intelligence",
        "Programming Language :: Python :: 3",
    ):
        assert wanted in classifiers
    assert {"grad-cam", "keras", "jupyter"} <= set(PROJECT["keywords"])
    urls = PROJECT["urls"]
    assert set(urls) >= {"Documentation", "Source", "Issues", "Changelog"}
    assert all(u.startswith("https://") for u in urls.values())


def test_contributing_names_the_commands_ci_runs():
    """CONTRIBUTING.md gives the README's test command, the fast subset, ruff, mypy and the docs build."""
    text = (ROOT / "CONTRIBUTING.md").read_text()
    readme = (ROOT / "README.md").read_text()
    command = 'pip install -e ".[dev]" && sh tests/install_peers.sh && pytest'
    assert command in text and command in readme
    for wanted in ('pytest -m "not slow"', "ruff check", "mypy", "mkdocs build --strict", "benchmarks/"):
        assert wanted in text


def test_ci_builds_checks_and_smoke_tests_the_wheel():
    """.ci/run runs the wheel check before the tests; the check builds, twine-checks, installs and smoke-tests."""
    run = (ROOT / ".ci" / "run").read_text()
    assert run.index(".ci/wheel_check.sh") < run.index("&& pytest")
    check = (ROOT / ".ci" / "wheel_check.sh").read_text()
    for wanted in ("python -m build", "twine check", "venv", "--no-deps", "wheel_smoke.py"):
        assert wanted in check
    assert "-e " not in check.replace("set -euo", "")
    assert (ROOT / "tests" / "wheel_smoke.py").is_file()


@pytest.mark.slow
def test_wheel_as_users_install_it():
    """The whole check CI runs: a wheel that misses a package-data file or imports a test helper fails here."""
    done = subprocess.run(["bash", str(ROOT / ".ci" / "wheel_check.sh")], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "wheel smoke test passed" in done.stdout
