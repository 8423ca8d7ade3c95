"""camwidget.inputs.preprocess: families detected, the user's function checked, pictures made model inputs."""

import models
import numpy as np
import pytest

from camwidget.inputs import preprocess


def test_families_are_detected_by_name_nested_or_flattened(composite_a, composite_b):
    for model in (composite_a, composite_b):
        assert preprocess.resolve(model, None).description.startswith("VGG (caffe")
    plain = preprocess.resolve(models.small_cnn(name="plain"), None)
    assert "scaled to 0-1" in plain.description
    np.testing.assert_allclose(plain.fn(np.full((1, 2, 2, 3), 255.0, np.float32)), 1.0)


def test_a_users_function_must_keep_the_shape():
    steps = preprocess.resolve(models.small_cnn(name="f"), lambda p: p[:, :1])
    with pytest.raises(ValueError, match="must keep the batch, height and width"):
        steps.fn(np.zeros((1, 4, 4, 3), np.float32))
    with pytest.raises(ValueError, match="preprocess must be None"):
        preprocess.resolve(models.small_cnn(name="g"), "imagenet")


def test_model_input_resizes_keeps_aspect_for_free_sizes_and_matches_channels(rng):
    pixels = rng.integers(0, 256, (300, 600, 3), dtype=np.uint8)
    batch, resized = preprocess.model_input(pixels, (None, None, 3), 200, lambda p: p)
    assert batch.shape == (1, 100, 200, 3) and resized == ((300, 600), (100, 200))
    batch, resized = preprocess.model_input(pixels, (32, 32, 1), 1024, lambda p: p / 255.0)
    assert batch.shape == (1, 32, 32, 1) and resized is None and batch.max() <= 1.0
    with pytest.raises(ValueError, match="NaN or infinite"):
        preprocess.model_input(pixels, (32, 32, 3), 1024, lambda p: p * np.nan)
