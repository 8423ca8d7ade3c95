"""camwidget.metrics.randomisation: Spearman's rho of two maps (against its formula without ties, and SciPy's
spearmanr with them), and the copy the checks randomise, which leaves the user's model alone."""

from __future__ import annotations

import keras
import models
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from scipy.stats import spearmanr

from camwidget.metrics.randomisation import copy_model, spearman

SHAPES = st.tuples(st.integers(1, 6), st.integers(2, 6))


@settings(max_examples=50, deadline=None)
@given(st.data())
def test_rho_is_one_minus_six_sum_d_squared_over_n_n2_minus_1_without_ties(data):
    shape = data.draw(SHAPES)
    n = shape[0] * shape[1]
    a = data.draw(st.permutations(range(n))).copy()
    b = data.draw(st.permutations(range(n))).copy()
    d = np.array(a, float) - np.array(b, float)  # the values are their own ranks
    want = 1 - 6 * (d**2).sum() / (n * (n**2 - 1))
    assert spearman(np.reshape(a, shape) * 0.5, np.reshape(b, shape) - 3.0) == pytest.approx(want, abs=1e-9)


@settings(max_examples=50, deadline=None)
@given(SHAPES.flatmap(lambda s: st.tuples(*[hnp.arrays(np.float64, s, elements=st.integers(0, 3)) for _ in "ab"])))
def test_rho_with_ties_is_scipys_and_zero_for_a_constant_map(maps):
    a, b = maps
    if a.min() == a.max() or b.min() == b.max():
        assert spearman(a, b) == 0.0
        return
    assert spearman(a, b) == pytest.approx(spearmanr(a.ravel(), b.ravel()).statistic, abs=1e-9)


def test_the_copy_has_the_same_weights_and_is_its_own(rng):
    model = models.small_cnn(name="to_copy")
    x = rng.uniform(0, 1, (2, 32, 32, 3)).astype("float32")
    copy = copy_model(model)
    assert copy is not model
    np.testing.assert_allclose(keras.ops.convert_to_numpy(copy(x)), keras.ops.convert_to_numpy(model(x)), atol=1e-6)
    before = [w.copy() for w in model.get_weights()]
    copy.set_weights([w + 1.0 for w in copy.get_weights()])
    for want, got in zip(before, model.get_weights()):
        np.testing.assert_array_equal(want, got)
