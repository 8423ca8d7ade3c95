"""The explorer in background mode, as in a notebook's kernel: control changes compute in a worker thread,
the event loop stays free, progress shows, a newer request supersedes an older one."""

from __future__ import annotations

import asyncio
import time

import keras
import numpy as np
import pytest
from keras import layers

import camwidget as cw
from camwidget.explorer import controller


@pytest.fixture(scope="module")
def wide():
    """Score-CAM on `conv_c` needs five batches of masked inputs (40 channels, 8 per batch)."""
    keras.utils.set_random_seed(3)
    inp = keras.Input((32, 32, 3))
    x = layers.Conv2D(8, 3, padding="same", activation="relu", name="conv_a")(inp)
    x = layers.MaxPooling2D(name="pool")(x)
    x = layers.Conv2D(40, 3, padding="same", activation="relu", name="conv_c")(x)
    out = layers.Dense(3, activation="softmax", name="dense")(layers.GlobalAveragePooling2D()(x))
    return keras.Model(inp, out)


@pytest.fixture
def picture(rng):
    return rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)


async def settle(ex, timeout: float = 60.0) -> None:
    """Let the event loop run until the explorer has nothing in flight."""
    deadline = asyncio.get_running_loop().time() + timeout
    await asyncio.sleep(0)
    while ex.busy:
        assert asyncio.get_running_loop().time() < deadline, "the worker never delivered"
        await asyncio.sleep(0.01)
    await asyncio.sleep(0)


def assert_fresh(ex, model, **options) -> None:
    """The explorer's map equals one computed now, from code, for its image and class."""
    expected = cw.compute_cam(model, ex.model_input, class_index=ex.class_index, **options)[0]
    np.testing.assert_allclose(ex.cam, expected, atol=1e-5)


def statuses(ex) -> list[str]:
    seen: list[str] = []
    ex.controls["status"].observe(lambda change: seen.append(change["new"]), names="value")
    return seen


def test_long_map_runs_in_the_background_with_progress(wide, picture, monkeypatch):
    monkeypatch.setattr(controller, "BUSY_AFTER", 0.0)

    async def scenario():
        ex = cw.CAMExplorer(wide, picture, background=True)
        ex.session.scorecam_channels = None  # every channel: five batches
        progress_seen: list[tuple[int, int]] = []
        ex.controls["progress"].observe(
            lambda c: progress_seen.append((ex.controls["progress"].value, ex.controls["progress"].max))
        )
        busy_shown: list[str] = []
        ex._c.busy.layout.observe(lambda c: busy_shown.append(c["new"]), names="display")
        with ex.session._computing:  # hold the worker at the start, to act while it "runs"
            ex.controls["method"].value = "scorecam"
            await asyncio.sleep(0.05)
            assert ex.busy and ex.method == "scorecam" and "Grad-CAM:" in ex.status_text  # old view, said busy
            assert "computing Score-CAM at conv_c" in ex.controls["busy"].value
            # the view on screen is the previous one, and says so: faded, and named in the progress line
            assert "showing Grad-CAM at conv_c until it is ready" in ex.controls["busy"].value
            assert all("camwidget-stale" in ex.controls[name]._dom_classes for name in ("overlay", "canvas"))
            before = ex.controls["overlay"].value
            ex.controls["alpha"].value = 0.9  # applies at once, to the view on screen
            await asyncio.sleep(0.01)
            assert ex.controls["overlay"].value != before and ex.busy
        await settle(ex)
        assert "Score-CAM:" in ex.status_text and busy_shown[-1] == "none" and "flex" in busy_shown
        assert "camwidget-stale" not in ex.controls["overlay"]._dom_classes  # the new view is not faded
        assert (32, 40) in progress_seen  # the last batch of 40 masked inputs was reported
        assert_fresh(ex, wide, layer="conv_c", method="scorecam")
        ex.close()

    asyncio.run(scenario())


def test_a_newer_request_supersedes_and_the_older_is_never_shown(wide, picture, monkeypatch):
    async def scenario():
        ex = cw.CAMExplorer(wide, picture, background=True)
        ex.session.scorecam_channels = None
        seen = statuses(ex)
        masked = []
        original = ex.session.engine.class_probabilities

        def counted(x, *args, **kwargs):  # Score-CAM's masked batches, as Score-CAM calls it
            probabilities = original(x, *args, **kwargs)
            masked.append(len(x))  # only when every batch ran
            return probabilities

        monkeypatch.setattr(ex.session.engine, "class_probabilities", counted)  # put back after the test
        with ex.session._computing:
            ex.controls["method"].value = "scorecam"
            await asyncio.sleep(0.05)
            ex.controls["method"].value = "gradcam++"  # asked for before Score-CAM could finish
            await asyncio.sleep(0.05)
        await settle(ex)
        assert ex.method == "gradcam++" and "Grad-CAM++:" in ex.status_text
        assert not any("Score-CAM:" in s for s in seen), "the superseded Score-CAM map was shown"
        assert masked == [], f"Score-CAM went on after it was superseded ({len(masked)} masked batches ran)"
        assert_fresh(ex, wide, layer="conv_c", method="gradcam++")
        ex.controls["method"].value = "scorecam"  # the count does see Score-CAM when it runs to the end:
        await settle(ex)
        assert masked == [40], masked  # its 40 masked inputs, in one call (five batches inside)
        ex.close()

    asyncio.run(scenario())


def test_a_setter_while_the_worker_runs_wins(wide, picture):
    async def scenario():
        ex = cw.CAMExplorer(wide, picture, background=True)
        seen = statuses(ex)
        ex.controls["layer"].value = "conv_a"
        await asyncio.sleep(0)  # submitted to the worker
        ex.method = "layercam"  # a cell: computed at once, for the controls as they are now
        assert "Layer-CAM:" in ex.status_text and "conv_a" in ex.status_text and not ex.busy
        await asyncio.sleep(0.3)
        assert ex.method == "layercam" and "Layer-CAM:" in seen[-1]
        assert_fresh(ex, wide, layer="conv_a", method="layercam")
        ex.close()

    asyncio.run(scenario())


def test_a_failure_in_the_background_puts_the_controls_back_and_says_why(wide, picture):
    async def scenario():
        ex = cw.CAMExplorer(wide, picture, background=True)
        ex.controls["layer"].value = "conv_a"
        await settle(ex)
        seen = []
        ex.observe(seen.append, "method")
        ex.controls["method"].value = "cam"  # CAM needs GlobalAveragePooling2D + Dense right after the layer
        assert ex.method == "cam"  # the attribute follows its control at once; the map comes later
        await settle(ex)
        assert ex.method == "gradcam" and ex.controls["method"].value == "gradcam" and ex.layer == "conv_a"
        assert [(c["old"], c["new"]) for c in seen] == [("gradcam", "cam"), ("cam", "gradcam")]  # and back
        assert (
            "✖" in ex.controls["status"].value
            and "Use 'gradcam': it equals CAM" in ex.status_text
            and ex.status_text.rstrip().endswith("every model.")
        )
        assert "Grad-CAM:" in ex.status_text  # the last good view is still described
        ex.close()

    asyncio.run(scenario())


def test_image_change_in_the_background_follows_the_new_images_top_class(wide, picture, rng):
    other = rng.integers(0, 256, (40, 24, 3), dtype=np.uint8)

    async def scenario():
        ex = cw.CAMExplorer(wide, {"first": picture, "second": other}, background=True)
        ex.controls["image"].value = 1
        await settle(ex)
        probs = wide.predict(ex.model_input, verbose=0)[0]
        assert ex.class_index == int(np.argmax(probs)) and ex.status_text.startswith("second")
        assert ex.controls["class"].options[0][1] == int(np.argmax(probs))
        assert ex.overlay.shape == (40, 24, 3)
        ex.close()

    asyncio.run(scenario())


def test_without_an_event_loop_changes_draw_at_once(wide, picture):
    ex = cw.CAMExplorer(wide, picture)  # a script: nothing runs later, so nothing is deferred
    ex.controls["method"].value = "xgradcam"
    assert not ex.busy and "XGrad-CAM:" in ex.status_text
    ex.close()


def test_a_view_landing_after_the_controls_moved_on_is_recorded_as_what_it_shows(wide, picture):
    """The worker's view lands after a newer change was made but before it was sent on; that newer change
    then fails. The controls must go back to the view on screen, not to the newer change's values."""

    async def scenario():
        ex = cw.CAMExplorer(wide, picture, background=True)
        with ex.session._computing:
            ex.controls["method"].value = "gradcam++"
            await asyncio.sleep(0.05)  # request A sent to the worker, which waits for the lock
        time.sleep(0.5)  # the loop is held: A is computed and its landing queued, not yet run
        ex.controls["layer"].value = "conv_a"  # B: CAM at conv_a cannot be made (no GAP + Dense after it)
        ex.controls["method"].value = "cam"
        await settle(ex)
        assert "Grad-CAM++:" in ex.status_text and "at conv_c" in ex.status_text and "✖" in ex.controls["status"].value
        assert (ex.layer, ex.method) == ("conv_c", "gradcam++"), "the controls do not describe the view shown"
        assert ex.controls["depth"].value == "conv_c"
        assert_fresh(ex, wide, layer="conv_c", method="gradcam++")
        ex.close()

    asyncio.run(scenario())


def test_a_view_computed_while_the_model_changed_is_computed_again(wide, picture):
    """Weights change (another cell trains) while the worker computes: that view is not shown; the one
    that lands is the model's as it is now."""

    async def scenario():
        ex = cw.CAMExplorer(wide, picture, background=True)
        original, calls = ex.session.view, []
        before = [w.copy() for w in wide.get_weights()]

        def view_then_train(*args, **kwargs):
            result = original(*args, **kwargs)
            if not calls:
                wide.set_weights([w * 1.5 for w in before])  # changed under the first computation
            calls.append(args)
            return result

        ex.session.view = view_then_train
        try:
            ex.controls["method"].value = "gradcam++"
            await settle(ex)
            assert len(calls) == 2, "the view computed while the model changed was not computed again"
            assert "Grad-CAM++:" in ex.status_text
            assert_fresh(ex, wide, layer="conv_c", method="gradcam++")
        finally:
            wide.set_weights(before)
            ex.close()

    asyncio.run(scenario())
