"""The progress line names the work that runs: a stage of a longer job is reported as that stage, never as the
batches inside it, and a superseded job still stops inside a stage."""

from __future__ import annotations

import models
import numpy as np
import pytest

from camwidget import api, metrics, progress
from camwidget.explorer.check import check_map


class Recorder:
    def __init__(self, cancel_after: int | None = None):
        self.reports: list[tuple[int, int, str]] = []
        self.cancel_after = cancel_after

    def task(self) -> progress.Task:
        cancelled = lambda: self.cancel_after is not None and len(self.reports) >= self.cancel_after  # noqa: E731
        return progress.Task(lambda d, t, w: self.reports.append((d, t, w)), cancelled)


def test_a_stage_is_reported_and_its_inner_steps_are_not():
    seen = Recorder()
    with progress.tracking(seen.task()):
        for k in range(3):
            with progress.stage(k + 1, 3, "randomising layer"):
                for start in range(0, 40, 8):
                    progress.step(start, 40, "masked inputs")
        progress.step(5, 6, "after the stages")
    assert seen.reports == [
        (1, 3, "randomising layer"),
        (2, 3, "randomising layer"),
        (3, 3, "randomising layer"),
        (5, 6, "after the stages"),
    ]


def test_a_superseded_job_stops_inside_a_stage():
    seen = Recorder(cancel_after=1)
    with progress.tracking(seen.task()), pytest.raises(progress.Superseded):
        with progress.stage(1, 2, "randomising layer"):
            progress.step(0, 40, "masked inputs")


@pytest.fixture(scope="module")
def cnn():
    return models.small_cnn(n_classes=3, size=32)


def test_the_randomisation_check_says_which_layer_it_randomises(cnn):
    x = np.random.default_rng(0).random((1, 32, 32, 3), np.float32)
    seen = Recorder()
    with progress.tracking(seen.task()):
        result = metrics.model_randomization(cnn, x, class_index=0, steps=3)
    counted = [r for r in seen.reports if r[1]]  # notes (total 0), such as tracing the pass, may come too
    assert counted == [(k, 3, "randomising layer") for k in (1, 2, 3)]
    assert len(result.steps) == 3


def test_the_map_check_counts_its_four_curves_and_calls_the_model_as_given(cnn):
    x = np.random.default_rng(1).random((1, 32, 32, 3), np.float32)
    layer = api.default_layer(cnn)
    cam = api.compute_cam(cnn, x, class_index=0, layer=layer)[0]
    seen = Recorder()
    with progress.tracking(seen.task()):
        check = check_map(
            cnn,
            x,
            cam,
            0,
            layer=layer,
            method="gradcam",
            output=0,
            title="t",
            pixels=(x[0] * 255).astype(np.uint8),
            steps=5,
            randomize=True,
        )
    curves = [r for r in seen.reports if r[2].startswith("deletion and insertion curves")]
    assert curves == [(k, 4, "deletion and insertion curves: curve") for k in (1, 2, 3, 4)]
    assert {w for _, total, w in seen.reports if total} == {"deletion and insertion curves: curve", "randomising layer"}
    titles = [ax.get_title() for ax in check.figure().axes]
    assert "model as given" in titles
    assert not any("trained" in t for t in titles)
