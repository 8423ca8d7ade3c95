"""Find the Clever Hans: :func:`audit` (SpRAy over a data set) and its :class:`Audit`; see
:mod:`camwidget.audits.analysis`."""

from camwidget.audits.analysis import Audit, ClassAudit, Cluster, audit
from camwidget.audits.flags import Flag

__all__ = ["Audit", "ClassAudit", "Cluster", "Flag", "audit"]
