"""Find the Clever Hans: :func:`audit` (SpRAy over a data set) and its :class:`Audit`; see
:mod:`camwidget.audits.analysis`. Names are imported on first use, so that the command line's parser
(:mod:`camwidget.audits.command`) loads without Keras."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__all__ = ["Audit", "ClassAudit", "Cluster", "Flag", "audit"]
_WHERE = {"Audit": "analysis", "ClassAudit": "analysis", "Cluster": "analysis", "audit": "analysis", "Flag": "flags"}

if TYPE_CHECKING:
    from camwidget.audits.analysis import Audit, ClassAudit, Cluster, audit
    from camwidget.audits.flags import Flag


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'camwidget.audits' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"camwidget.audits.{module}"), name)
    globals()[name] = value
    return value
