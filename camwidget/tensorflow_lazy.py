"""TensorFlow, imported on first use, so that camwidget runs on JAX or torch where TensorFlow is absent.

``from .backends.tensorflow_lazy import tf`` gives an object that imports ``tensorflow`` the first time one of
its attributes is read and then behaves as the module. The TensorFlow engine, the traced dry run and the
weights fingerprint read it; the JAX and torch paths never do, so a JAX kernel neither needs TensorFlow nor
pays its import (about 0.5 GB and several seconds). It does not enter ``sys.modules``: Keras decides some
things by whether ``tensorflow`` was imported, and this must not change that.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any

from camwidget.errors import CAMError


class _LazyTensorFlow:
    """Stands for the ``tensorflow`` module until an attribute is read."""

    _module: ModuleType | None = None

    def __getattr__(self, name: str) -> Any:
        module = _LazyTensorFlow._module
        if module is None:
            module = _LazyTensorFlow._module = _import()
        return getattr(module, name)

    def __repr__(self) -> str:
        return "<tensorflow, imported on first use>" if self._module is None else repr(self._module)


def _import() -> ModuleType:
    try:
        return importlib.import_module("tensorflow")
    except ImportError as error:
        import keras

        raise CAMError(
            f"this part of camwidget runs on TensorFlow, which cannot be imported here ({error}); Keras runs on "
            f"{keras.backend.backend()!r}. Install it (pip install tensorflow) or, on JAX or torch, report this: "
            "camwidget should not need TensorFlow there"
        ) from error


tf: Any = _LazyTensorFlow()
