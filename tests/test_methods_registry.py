"""camwidget.methods.registry: every registered method documents its paper and formula."""

from __future__ import annotations

import camwidget as cw


def test_every_method_documents_its_formula():
    for method in cw.METHODS.values():
        doc = method.compute.__doc__ or ""
        assert "20" in doc and ("=" in doc or "times" in doc), method.name  # a year of the paper and a formula
