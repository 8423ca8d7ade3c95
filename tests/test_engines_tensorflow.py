"""camwidget.engines.tensorflow: the TensorFlow engine traces its capture once per layer and input shape, for
any batch size."""

from __future__ import annotations

import models
import numpy as np

import camwidget as cw
from camwidget.engines import engine_for


def test_no_retrace_for_same_layer_and_shape(rng):
    model = models.small_cnn()
    engine = engine_for(model)
    x = rng.uniform(0, 1, (2, 32, 32, 3)).astype("float32")
    cw.compute_cam(model, x)
    traces = engine.trace_count
    assert traces == 1
    for c in range(3):
        cw.compute_cam(model, x, class_index=c)
        cw.compute_cam(model, x + 0.1, class_index=[c, 2 - c])
    assert engine.trace_count == traces
    cw.compute_cam(model, x[:1])  # traced for any batch size: a new batch size does not retrace
    cw.compute_cam(model, np.concatenate([x, x, x]))
    assert engine.trace_count == traces
