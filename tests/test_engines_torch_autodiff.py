"""camwidget.engines.torch_autodiff: its eager passes and fingerprint against NumPy, before and after the weights
change (reference.check_autodiff_module). torch only: run by test_backends.py's torch run."""

from __future__ import annotations

import pytest
from reference import check_autodiff_module

pytestmark = pytest.mark.backends("torch")


def test_the_passes_follow_their_formulas_on_the_weights_as_they_are_now():
    from camwidget.engines import torch_autodiff

    check_autodiff_module(torch_autodiff)
