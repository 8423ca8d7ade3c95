"""camwidget's version, in one place: the package, `camwidget --version` and the wheel's metadata read it."""

__version__ = "0.2.0"
