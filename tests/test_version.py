"""camwidget.version: the one place the version is written, read by the package, the wheel and the releases."""

import re
from pathlib import Path

import tomllib

import camwidget
from camwidget import version

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
PROJECT = PYPROJECT["project"]


def test_the_wheel_and_the_package_read_the_same_line():
    """The build (hatch) takes the version from camwidget/version.py with its pattern (``__version__ = "..."``);
    the package's __version__ is that same string."""
    assert PYPROJECT["tool"]["hatch"]["version"] == {"path": "camwidget/version.py"}
    text = (ROOT / "camwidget" / "version.py").read_text()
    written = re.findall(r"""(?im)^(?:__version__|VERSION) *= *(['"])v?(.+?)\1""", text)
    assert [v for _, v in written] == [version.__version__] and camwidget.__version__ == version.__version__


def test_version_is_in_one_place_and_released():
    """The version is camwidget/version.py's, a release (no .dev), and the changelog and citation say the same."""
    assert re.fullmatch(r"\d+\.\d+\.\d+", camwidget.__version__), camwidget.__version__
    assert "version" in PROJECT["dynamic"] and "version" not in PROJECT
    assert f"## [{camwidget.__version__}]" in (ROOT / "CHANGELOG.md").read_text()
    assert f'version: "{camwidget.__version__}"' in (ROOT / "CITATION.cff").read_text()
