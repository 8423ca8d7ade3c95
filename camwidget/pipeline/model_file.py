"""A model named on the command line: a .keras (or .h5) file, loaded in Keras's safe mode, or module:function."""

from __future__ import annotations

import importlib
import os
from typing import Any


class UsageError(Exception):
    """Something typed on the command line that cannot work: one line on stderr, exit code 2."""


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def load_model(spec: str) -> Any:
    """A model from a .keras/.h5 file (Keras's safe mode: no arbitrary code, Lambda layers refused) or from
    module:function. Raises UsageError with one line naming what went wrong."""
    import keras

    if os.path.exists(spec) or spec.endswith((".keras", ".h5")):
        if not os.path.exists(spec):
            raise UsageError(f"model file {spec!r} does not exist")
        try:
            return keras.models.load_model(spec, safe_mode=True, compile=False)
        except Exception as exc:  # noqa: BLE001 - one clear line, not a traceback
            raise UsageError(f"could not load the model file {spec!r}: {first_line(exc)}") from None
    if ":" not in spec:
        raise UsageError(f"MODEL must be a .keras file or module:function, not {spec!r}")
    return call_spec("MODEL", spec)


def call_spec(option: str, spec: str) -> Any:
    """module:function -> function(), with one line for each way it can fail."""
    module_name, function_name = spec.rsplit(":", 1)
    if not module_name or not function_name:
        raise UsageError(f"{option} {spec!r}: expected module:function")
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # noqa: BLE001
        raise UsageError(f"{option} {spec!r}: cannot import module {module_name!r} ({first_line(exc)})") from None
    function = getattr(module, function_name, None)
    if not callable(function):
        raise UsageError(f"{option} {spec!r}: module {module_name!r} has no function {function_name!r}")
    try:
        return function()
    except Exception as exc:  # noqa: BLE001
        raise UsageError(
            f"{option} {spec!r}: {function_name}() failed: {type(exc).__name__}: {first_line(exc)}"
        ) from None
