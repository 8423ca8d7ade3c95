"""Faithfulness metrics and sanity checks (camwidget.metrics): each against a formula written here or a peer
(xplique's Deletion/Insertion), and, on a model trained here on shapes at random places, Grad-CAM against a
random map and a centred Gaussian."""

from __future__ import annotations

import keras
import models
import numpy as np
import pytest
import traitlets
from keras import layers

import camwidget as cw
from camwidget import metrics

SIZE = 32


def shapes(n, seed):
    """Grey noise with one coloured square at a random place: red (class 0) or green (class 1); its box."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 0.4, (n, SIZE, SIZE, 3)).astype("float32")
    y = rng.integers(0, 2, n)
    boxes = []
    for picture, label in zip(x, y):
        top, left = rng.integers(0, SIZE - 10, 2)
        picture[top : top + 10, left : left + 10, label] += 0.6
        boxes.append((top, left, top + 10, left + 10))
    return np.clip(x, 0, 1), y, boxes


@pytest.fixture(scope="module")
def trained():
    keras.utils.set_random_seed(41)
    inp = keras.Input((SIZE, SIZE, 3))
    x = layers.Conv2D(16, 3, padding="same", activation="relu", name="conv1")(inp)
    x = layers.MaxPooling2D()(x)
    x = layers.Conv2D(32, 3, padding="same", activation="relu", name="conv2")(x)
    x = layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inp, layers.Dense(2, activation="softmax", name="classes")(x))
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    train_x, train_y, _ = shapes(1200, 0)
    model.fit(train_x, train_y, epochs=6, batch_size=32, verbose=0)
    test_x, test_y, boxes = shapes(24, 1)
    assert model.evaluate(test_x, test_y, verbose=0)[1] > 0.9  # the right answer is known: the shape
    return model, test_x, boxes, train_x, train_y


def gaussian_maps(n, size=SIZE):
    yy, xx = np.mgrid[:size, :size]
    g = np.exp(-(((yy - size / 2) ** 2 + (xx - size / 2) ** 2) / (2 * (size / 4) ** 2)))
    return np.repeat(g[None].astype("float32"), n, axis=0)


def test_gradcam_beats_a_random_map_and_a_centred_gaussian(trained):
    model, x, boxes, *_ = trained
    cams = cw.compute_cam(model, x, layer="conv2")
    random = np.random.default_rng(2).random((len(x), SIZE, SIZE)).astype("float32")
    centred = gaussian_maps(len(x))
    area = {
        name: (metrics.deletion(model, x, m, steps=32).area, metrics.insertion(model, x, m, steps=32).area)
        for name, m in (("gradcam", cams), ("random", random), ("gaussian", centred))
    }
    assert area["gradcam"][0] < area["random"][0] and area["gradcam"][0] < area["gaussian"][0], area
    assert area["gradcam"][1] > area["random"][1] and area["gradcam"][1] > area["gaussian"][1], area
    hits = metrics.pointing_game(x, cams, boxes, tolerance=0)
    assert hits.mean() > 0.8 > metrics.pointing_game(x, random, boxes, tolerance=0).mean()
    assert (
        metrics.energy_pointing_game(x, cams, boxes).mean() > 2 * metrics.energy_pointing_game(x, random, boxes).mean()
    )


def test_randomisation_checks_show_gradcam_decorrelating(trained):
    model, x, _, train_x, train_y = trained
    weights = [w.copy() for w in model.get_weights()]
    cascade = metrics.model_randomization(model, x[:16], layer="conv2")
    assert cascade.steps == ["classes", "conv2", "conv1"]  # from the top down
    assert cascade.rho.shape == (3, 16) and cascade.maps.shape == (3, 16, 16, 16)
    gradcam = np.abs(cascade.rho.mean(axis=1))
    layercam = metrics.model_randomization(model, x[:16], layer="conv2", method="layercam").rho.mean(axis=1)
    # Grad-CAM's maps stop following the model as it loses its training; Layer-CAM's keep more of the input's
    # structure (as Adebayo et al. found for other methods), so the check tells the two apart
    assert gradcam.mean() < 0.5 and gradcam.mean() < layercam.mean() - 0.15, (gradcam, layercam)
    for before, after in zip(weights, model.get_weights()):
        np.testing.assert_array_equal(before, after)  # the user's model is untouched
    data = metrics.data_randomization(model, train_x[:600], train_y[:600], x[:8], epochs=2, layer="conv2")
    assert data.rho.shape == (1, 8) and abs(data.rho.mean()) < 0.5


def test_deletion_and_insertion_follow_their_definition(trained):
    """Against a loop written here: P pixels, floor(k P / steps) most relevant replaced at step k."""
    model, x, *_ = trained
    x = x[:3]
    maps = np.random.default_rng(3).random((3, 8, 8)).astype("float32")
    curve = metrics.deletion(model, x, maps, steps=8, baseline="mean", class_index=1)
    up = np.stack([metrics._resize(m, SIZE, SIZE) for m in maps])
    base = x.mean(axis=(1, 2), keepdims=True) * np.ones_like(x)
    for i in range(3):
        order = np.argsort(-up[i].ravel(), kind="stable")
        for k in range(9):
            n = int(np.floor(k * SIZE * SIZE / 8))
            copy = x[i].reshape(-1, 3).copy()
            copy[order[:n]] = base[i].reshape(-1, 3)[order[:n]]
            want = model(copy.reshape(1, SIZE, SIZE, 3)).numpy()[0, 1]
            assert abs(curve.scores[i, k] - want) < 1e-5
    assert curve.area == pytest.approx(np.mean([np.trapezoid(s, curve.fractions) for s in curve.scores]), abs=1e-6)


def test_deletion_and_insertion_equal_xpliques(trained):
    from xplique.metrics import Deletion, Insertion

    model, x, *_ = trained
    maps = np.random.default_rng(4).random((len(x), SIZE, SIZE)).astype("float32")  # no ties: one order
    targets = np.eye(2)[model(x).numpy().argmax(axis=1)]
    for ours, theirs in ((metrics.deletion, Deletion), (metrics.insertion, Insertion)):
        mine = ours(model, x, maps, steps=20, baseline=0.0)
        peer = theirs(model, x, targets, baseline_mode=0.0, steps=20, batch_size=64)
        assert mine.area == pytest.approx(float(peer.evaluate(maps)), abs=1e-3)
        detailed = np.array(list(peer.detailed_evaluate(maps).values()))
        np.testing.assert_allclose(mine.scores.mean(axis=0), detailed, atol=1e-3)


def test_deletion_equals_quantus_pixel_flipping_where_they_agree(trained, monkeypatch):
    """Quantus flips channel values, not pixels: with the map the same on every channel, its steps 3k+2 (every
    channel of 64k pixels flipped) are deletion's step k."""
    import quantus

    if not hasattr(np, "trapz"):  # Quantus 0.6 calls np.trapz, which NumPy 2.4 removed (renamed trapezoid)
        monkeypatch.setattr(np, "trapz", np.trapezoid, raising=False)
    model, x, *_ = trained
    maps = np.random.default_rng(6).random((4, SIZE, SIZE)).astype("float32")
    metric = quantus.PixelFlipping(
        features_in_step=64,
        perturb_baseline=0.0,
        disable_warnings=True,
        display_progressbar=False,
        return_auc_per_sample=False,
    )
    peer = np.array(
        metric(
            model=model,
            x_batch=x[:4],
            y_batch=model(x[:4]).numpy().argmax(axis=1),
            a_batch=maps[:, None],
            channel_first=False,
            batch_size=4,
        )
    )
    ours = metrics.deletion(model, x[:4], maps, steps=16, baseline=0.0)
    np.testing.assert_allclose(ours.scores[:, 1:], peer[:, 2::3], atol=1e-3)


def test_confidence_follows_its_formula(trained):
    model, x, *_ = trained
    maps = cw.compute_cam(model, x[:6], layer="conv2")
    result = metrics.confidence(model, x[:6], maps)
    probs = model(x[:6]).numpy()
    classes = probs.argmax(axis=1)
    up = np.stack([metrics._resize(m, SIZE, SIZE) for m in maps])
    up = np.maximum(up, 0) / np.maximum(up, 0).max(axis=(1, 2), keepdims=True)
    o = model(x[:6] * up[..., None]).numpy()[np.arange(6), classes]
    y = probs[np.arange(6), classes]
    assert result.average_drop == pytest.approx(100 * np.mean(np.maximum(0, y - o) / y), abs=1e-3)
    assert result.increase_in_confidence == pytest.approx(100 * np.mean(o > y))


def test_road_imputes_from_the_neighbours_and_orders_by_relevance(trained):
    model, x, *_ = trained
    image = np.random.default_rng(5).random((SIZE, SIZE, 3)).astype("float32")
    removed = np.zeros((SIZE, SIZE), bool)
    removed[10:12, 10:13] = True
    filled = metrics.noisy_linear_imputation(image, removed, 0.0, np.random.default_rng(0))
    np.testing.assert_array_equal(filled[~removed], image[~removed])  # only removed pixels change
    for y, x_ in zip(*np.nonzero(removed)):  # each removed pixel: its neighbours' weighted mean
        total, weight = 0.0, 0.0
        for dy, dx in [(-1, 0), (1, 0), (0, -1), (0, 1), (-1, -1), (-1, 1), (1, -1), (1, 1)]:
            w = 1 / 6 if dy == 0 or dx == 0 else 1 / 12
            total, weight = total + w * filled[y + dy, x_ + dx], weight + w
        np.testing.assert_allclose(filled[y, x_], total / weight, atol=1e-5)
    cams = cw.compute_cam(model, x[:8], layer="conv2")
    morf = metrics.road(model, x[:8], cams, percents=(20, 50))
    lerf = metrics.road(model, x[:8], cams, percents=(20, 50), most_relevant_first=False)
    assert morf.scores.shape == (8, 2) and morf.mean < lerf.mean  # removing what the map points at hurts more


def test_metrics_bad_input_says_what_is_expected(trained):
    model, x, boxes, *_ = trained
    with pytest.raises(
        ValueError, match=r"maps have shape \(3, 8, 8\); expected one map per image, \(N, h, w\) with N = 4"
    ):
        metrics.deletion(model, x[:4], np.zeros((3, 8, 8)))
    with pytest.raises(ValueError, match="steps must be an int of at least 1, not 0"):
        metrics.insertion(model, x[:2], np.zeros((2, 8, 8)), steps=0)
    with pytest.raises(ValueError, match=r"the region has shape \(16, 16\); give a box .* \(32, 32\)"):
        metrics.energy_pointing_game(x[:1], np.zeros((1, 8, 8)), [np.ones((16, 16))])
    with pytest.raises(ValueError, match="baseline must be one of 'mean', 'blur', 'zero'"):
        metrics.deletion(model, x[:1], np.zeros((1, 8, 8)), baseline="grey")
    regression = keras.Sequential(
        [keras.Input((SIZE, SIZE, 3)), layers.Conv2D(2, 3), layers.Flatten(), layers.Dense(1)]
    )
    with pytest.raises(ValueError, match="these metrics score a class"):
        metrics.deletion(regression, x[:1], np.zeros((1, 8, 8)))


# -- in the explorer -------------------------------------------------------------------------------------------


def test_explorer_check_view_shows_the_curves_and_runs_the_randomisation_on_demand(trained):
    model, x, *_ = trained
    pictures = list((x[:2] * 255).astype("uint8"))
    ex = cw.CAMExplorer(model, pictures, class_names=["red", "green"], preprocess=lambda p: p / 255, background=False)
    try:
        result = ex.check()
        want = metrics.deletion(
            model, ex.model_input, ex.cam[None], class_index=ex.predictions[0].class_index, steps=50
        )
        np.testing.assert_allclose(result.deletion.scores, want.scores, atol=1e-6)
        assert result.deletion.area < result.random_deletion.area  # a trained model's map beats a random one here
        assert result.randomization is None and result._repr_png_()[:4] == b"\x89PNG"
        controls = ex.controls
        assert controls["randomize"].layout.display == "none"
        controls["mode"].value = "Check map"
        ex._flush()
        assert controls["randomize"].layout.display is None and controls["grid"].layout.display == "block"
        assert ex._screen.check is not None and ex._screen.check.randomization is None
        first = controls["grid"].value
        controls["randomize"].click()
        ex._flush()
        assert ex._screen.check.randomization is not None and len(ex._screen.check.randomization.steps) == 3
        assert controls["grid"].value != first  # the row of randomised maps was drawn
        ex.class_index = 1 - ex.class_index  # a new map: its check without the randomisation (run on demand)
        assert ex._screen.check.randomization is None and ex._screen.check.deletion.scores.shape == (1, 51)
    finally:
        ex.close()


def test_check_says_when_it_does_not_apply():
    keras.utils.set_random_seed(42)
    inp = keras.Input((40, 1))
    out = layers.Dense(2, activation="softmax")(layers.GlobalAveragePooling1D()(layers.Conv1D(4, 3, name="c")(inp)))
    ex = cw.CAMExplorer(keras.Model(inp, out), np.zeros((40, 1), np.float32), background=False)
    try:
        with pytest.raises(ValueError, match="the map check works on pictures; this explorer shows signals"):
            ex.check()
        modes = ex.controls["mode"].options
        assert "Check map" not in modes and "Compare methods" in modes  # not offered, rather than refused
        with pytest.raises(traitlets.TraitError):
            ex.controls["mode"].value = "Check map"
    finally:
        ex.close()


def test_every_numeric_option_out_of_range_is_named_with_what_was_given_and_what_is_valid():
    """NaN, infinities, negatives and non-numbers given to a metric or check option: a CAMError (a ValueError)
    naming the option, the value and the valid range, before any work (ROAD's NaN percent used to end in
    "cannot convert float NaN to integer", a NaN noise in NaN scores)."""
    from camwidget.explorer import check

    keras.utils.set_random_seed(43)
    model = models.small_cnn(n_classes=2, size=16, name="options")
    x = np.random.default_rng(0).uniform(0, 1, (1, 16, 16, 3)).astype("float32")
    maps = np.random.default_rng(1).random((1, 4, 4)).astype("float32")
    nan, inf = float("nan"), float("inf")
    percents = r"percents must be one or more finite numbers above 0 and below 100 .*, not "
    cases = [
        (lambda: metrics.road(model, x, maps, percents=(nan,)), percents + r"\(nan,\)"),
        (lambda: metrics.road(model, x, maps, percents=(10, inf)), percents + r"\(10, inf\)"),
        (lambda: metrics.road(model, x, maps, percents=(0,)), percents + r"\(0,\)"),
        (lambda: metrics.road(model, x, maps, percents=()), percents + r"\(\)"),
        (lambda: metrics.road(model, x, maps, percents="ten"), percents + "'ten'"),
        (lambda: metrics.road(model, x, maps, noise=nan), r"noise must be a finite number of at least 0, not nan"),
        (lambda: metrics.road(model, x, maps, noise=-0.1), r"noise must be a finite number of at least 0, not -0.1"),
        (lambda: metrics.road(model, x, maps, seed=-1), r"seed must be an int of at least 0, not -1"),
        (lambda: metrics.road(model, x, maps, seed=1.5), r"seed must be an int of at least 0, not 1.5"),
        (lambda: metrics.deletion(model, x, maps, steps=nan), r"steps must be an int of at least 1, not nan"),
        (lambda: metrics.insertion(model, x, maps, steps=-3), r"steps must be an int of at least 1, not -3"),
        (lambda: metrics.deletion(model, x, maps, baseline=nan), r"baseline must be a finite number .*, not nan"),
        (
            lambda: metrics.deletion(model, x, maps, baseline=np.full_like(x, inf)),
            r"baseline contains 768 NaN or infinite",
        ),
        (
            lambda: metrics.pointing_game(x, maps, [(0, 0, 4, 4)], tolerance=-1),
            r"tolerance must be an int of at least 0, not -1",
        ),
        (
            lambda: metrics.pointing_game(x, maps, [(0, 0, 4, 4)], tolerance=nan),
            r"tolerance must be an int of at least 0, not nan",
        ),
        (
            lambda: metrics.pointing_game(x, maps, [(0, 0, nan, 4)]),
            r"the box \(0.0, 0.0, nan, 4.0\) is not one: give \(top, left",
        ),
        (lambda: metrics.energy_pointing_game(x, maps, [(0, 0, -2, -2)]), r"the box \(0, 0, -2, -2\) is not one"),
        (lambda: metrics.model_randomization(model, x, steps=0), r"steps must be an int of at least 1, not 0"),
        (lambda: metrics.model_randomization(model, x, seed=nan), r"seed must be an int of at least 0, not nan"),
        (lambda: metrics.data_randomization(model, x, [0], x, epochs=0), r"epochs must be an int of at least 1, not 0"),
        (
            lambda: metrics.noisy_linear_imputation(x[0], np.ones((16, 16), bool), inf, np.random.default_rng()),
            r"noise must be a finite number of at least 0, not inf",
        ),
        (
            lambda: check.check_map(
                model, x, maps[0], 0, layer="conv_b", method="gradcam", output=0, title="t", pixels=x[0], steps=nan
            ),
            r"steps must be an int of at least 1, not nan",
        ),
    ]
    for call, message in cases:
        with pytest.raises(cw.CAMError, match=message):
            call()


# -- a model with several inputs ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def two_inputs():
    return models.gated_two_inputs(seed=44)


def test_every_metric_takes_the_other_inputs_as_compute_cam_does(two_inputs):
    """deletion, insertion, confidence, ROAD and both randomisation checks on a model of two inputs, with
    input= and other_inputs= (one row per image here, so each copy must go with its own image's row), against
    the model called here with both inputs on copies made here."""
    model = two_inputs
    rng = np.random.default_rng(7)
    x = rng.uniform(0, 1, (2, 16, 16, 3)).astype("float32")
    meta = (rng.normal(size=(2, 4)) * 4).astype("float32")
    fed = {"input": "image", "other_inputs": {"meta": meta}}
    maps = rng.random((2, 16, 16)).astype("float32")  # at the images' size: ranked as they are
    classes = np.array([0, 2])

    def probability(images, rows):
        out = keras.ops.convert_to_numpy(model({"image": images, "meta": meta[rows]}))
        return out[np.arange(len(rows)), classes[rows]]

    ranks = metrics.rank_pixels(maps)
    curve = metrics.deletion(model, x, maps, class_index=classes, steps=4, baseline="zero", **fed)
    inserted = metrics.insertion(model, x, maps, class_index=classes, steps=4, baseline="zero", **fed)
    for k, count in enumerate(np.linspace(0, 256, 5).astype(int)):
        kept = (ranks >= count)[..., None]
        np.testing.assert_allclose(curve.scores[:, k], probability(x * kept, [0, 1]), atol=1e-5)
        np.testing.assert_allclose(inserted.scores[:, k], probability(x * ~kept, [0, 1]), atol=1e-5)

    confidence = metrics.confidence(model, x, maps, class_index=classes, **fed)
    unit = maps / maps.max(axis=(1, 2), keepdims=True)
    np.testing.assert_allclose(confidence.original, probability(x, [0, 1]), atol=1e-5)
    np.testing.assert_allclose(confidence.explained, probability(x * unit[..., None], [0, 1]), atol=1e-5)

    road = metrics.road(model, x, maps, class_index=classes, percents=(25, 50), noise=0.0, **fed)
    for i in range(2):
        filled = np.stack(
            [
                metrics.noisy_linear_imputation(x[i], ranks[i] < round(p / 100 * 256), 0.0, np.random.default_rng(0))
                for p in (25, 50)
            ]
        )
        np.testing.assert_allclose(road.scores[i], probability(filled, [i, i]), atol=1e-5)

    copies = []

    def copy():
        copies.append(metrics.copy_model(model))
        return copies[-1]

    randomized = metrics.model_randomization(model, x, layer="conv", class_index=classes, steps=2, copy=copy, **fed)
    np.testing.assert_allclose(randomized.before, cw.compute_cam(model, x, layer="conv", class_index=classes, **fed))
    np.testing.assert_allclose(
        randomized.maps[-1], cw.compute_cam(copies[-1], x, layer="conv", class_index=classes, **fed), atol=1e-6
    )
    assert randomized.rho.shape == (2, 2)

    train = rng.uniform(0, 1, (8, 16, 16, 3)).astype("float32")
    shuffled = metrics.data_randomization(
        model,
        train,
        np.arange(8) % 3,
        x,
        epochs=1,
        layer="conv",
        copy=copy,
        train_other_inputs={"meta": rng.normal(size=(8, 4))},
        **fed,
    )
    top = keras.ops.convert_to_numpy(model({"image": x, "meta": meta})).argmax(axis=1)
    np.testing.assert_allclose(
        shuffled.maps[0], cw.compute_cam(copies[-1], x, layer="conv", class_index=top, **fed), atol=1e-6
    )
    with pytest.raises(cw.CAMError, match=r"also takes 'meta': give their training values as train_other_inputs="):
        metrics.data_randomization(model, train, np.arange(8) % 3, x, epochs=1, **fed)
    with pytest.raises(cw.CAMError, match=r"the model has 2 inputs \('image', 'meta'\); pass input="):
        metrics.deletion(model, x, maps)
    with pytest.raises(cw.CAMError, match=r"input 'meta' was given 3 rows for 2 images"):
        metrics.road(model, x, maps, input="image", other_inputs={"meta": np.zeros((3, 4))})
