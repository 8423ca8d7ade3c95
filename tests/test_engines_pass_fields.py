"""camwidget.engines.pass_fields: a Scoring unpacks in its fields' order, and PerturbedCopies scores its copies
in calls of `batch`, the last one padded with zeros whose scores are dropped."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from camwidget.engines.pass_fields import PerturbedCopies, Scoring


def test_a_scoring_unpacks_as_its_fields():
    classes = np.array([1, -1], np.int32)
    target = object()
    got_classes, output, score, got_target, feed = Scoring(classes, 2, "probability", target)
    assert got_classes is classes and (output, score, got_target, feed) == (2, "probability", target, None)


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 40), st.integers(1, 9), st.integers(0, 2**16))
def test_copies_are_scored_in_padded_batches(copies, batch, seed):
    rng = np.random.default_rng(seed)
    rows, counts, classes = (rng.integers(1, 50, copies).astype(np.int32) for _ in range(3))
    perturbed = PerturbedCopies(None, None, None, rows, counts, classes, output=0, insert=False, batch=batch)
    calls = []

    def run(r, n, c):
        calls.append((r, n, c))
        return r * 10000.0 + n * 100.0 + c

    scores = perturbed.scored_in_batches(run)
    np.testing.assert_array_equal(scores, rows * 10000.0 + counts * 100.0 + classes)
    assert len(calls) == -(-copies // batch)  # ceil
    for i, call in enumerate(calls):
        for given_values, values in zip(call, (rows, counts, classes)):
            assert given_values.shape == (batch,) and given_values.dtype == np.int32
            part = values[i * batch : (i + 1) * batch]
            np.testing.assert_array_equal(given_values[: len(part)], part)
            assert not given_values[len(part) :].any()  # the padding: zeros
