"""camwidget.pipeline.on_ray: explain_many's batches spread over a Ray cluster, with explain_many's results."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from camwidget.errors import CAMError
from camwidget.pipeline.batch import explain_many


def test_without_ray_the_error_names_the_extra_that_installs_it(small, monkeypatch):
    from camwidget.pipeline.on_ray import explain_on_ray

    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError, as where it is not installed
    with pytest.raises(CAMError, match=r"--ray needs Ray: pip install 'camwidget\[ray\]'"):
        next(explain_on_ray(small, np.zeros((1, 32, 32, 3), np.uint8), address=None))


@pytest.mark.slow  # starts a local Ray cluster of two workers (about 20 s)
def test_ray_spreads_batches_over_two_workers_with_the_same_results(small):
    ray = pytest.importorskip("ray", reason="Ray is the [ray] extra; pip install -e .[dev] installs it")
    from camwidget.pipeline.on_ray import explain_on_ray

    x = np.random.default_rng(2).integers(0, 256, (64, 32, 32, 3)).astype(np.uint8)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        spread = list(explain_on_ray(small, x, address=None, actors=2, batch_size=8))
        used = ray.cluster_resources().get("CPU")
    finally:
        ray.shutdown()
    single = list(explain_many(small, x, batch_size=8))
    assert used == 2 and len(spread) == 64
    for a, b in zip(spread, single):
        assert (a.index, a.name, a.class_index) == (b.index, b.name, b.class_index)
        np.testing.assert_allclose(a.cam, b.cam, atol=1e-5)
