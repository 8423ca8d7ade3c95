"""camwidget.engines.capture: the capture reads only its own thread's calls, and puts each layer back."""

from __future__ import annotations

import threading

import models
import numpy as np

from camwidget.engines import capture


def test_capture_reports_only_its_own_threads_calls():
    model = models.small_cnn(name="captured")
    conv = model.get_layer("conv_a")
    seen, stop = [], threading.Event()
    x = np.zeros((1, 32, 32, 3), np.float32)
    other = threading.Thread(target=lambda: [model(x) for _ in iter(stop.is_set, True)])
    other.start()
    try:
        with capture.capturing({"conv_a": conv}, lambda path, out: seen.append(path)):
            for _ in range(5):
                model(x)
    finally:
        stop.set()
        other.join()
    assert seen == ["conv_a"] * 5
    assert "call" not in vars(conv)  # put back
