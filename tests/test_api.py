"""camwidget.api: compute_cam's own handling of what it is given (before the Explainer computes the maps, which
test_exact checks against an independent Grad-CAM), and the layer listing with its default."""

from __future__ import annotations

import models
import numpy as np
import pytest
from PIL import Image

import camwidget as cw
from camwidget import targets


@pytest.fixture
def x(rng):
    return rng.uniform(0, 1, (2, 32, 32, 3)).astype("float32")


def test_the_map_layers_are_listed_in_forward_order_and_the_last_convolution_is_the_default(small):
    """small_cnn: conv_a (32x32) -> pool_a (16x16) -> conv_b (16x16) -> gap -> dense: three map layers."""
    assert cw.spatial_layers(small) == ["conv_a", "pool_a", "conv_b"]
    assert cw.default_layer(small) == "conv_b"
    np.testing.assert_array_equal(
        cw.compute_cam(small, np.zeros((1, 32, 32, 3), np.float32) + 0.5),
        cw.compute_cam(small, np.zeros((1, 32, 32, 3), np.float32) + 0.5, layer="conv_b"),
    )


def test_one_image_is_a_batch_of_one_and_raw_maps_are_the_normalised_ones_before_relu_and_scaling(small, x):
    one = cw.compute_cam(small, x[0])
    assert one.shape == (1, 16, 16) and one.dtype == np.float32
    raw = cw.compute_cam(small, x, normalize=False, class_index=[0, 2])
    relu = np.maximum(raw, 0)
    peak = relu.max(axis=(1, 2), keepdims=True)
    wanted = np.divide(relu, peak, out=np.zeros_like(relu), where=peak > 0)
    np.testing.assert_allclose(cw.compute_cam(small, x, class_index=[0, 2]), wanted, atol=1e-6)
    assert (raw < 0).any()  # signed: nothing was cut


def test_preprocess_is_applied_to_a_copy(small, x):
    given = x.copy()
    doubled = cw.compute_cam(small, given, preprocess=lambda p: np.multiply(p, 2.0, out=p))  # in place on purpose
    np.testing.assert_array_equal(given, x)
    np.testing.assert_allclose(doubled, cw.compute_cam(small, x * 2.0), atol=1e-6)
    with pytest.raises(TypeError, match="preprocess must be a function of the images, not str"):
        cw.compute_cam(small, x, preprocess="imagenet")


def test_method_options_are_the_settings_written_in(small, x):
    """Finer-CAM's gamma weighs the similar classes it subtracts: gamma=0 leaves the class's own Grad-CAM."""
    as_dict = cw.compute_cam(small, x, method="finer-cam", method_options={"gamma": 0})
    np.testing.assert_allclose(as_dict, cw.compute_cam(small, x, method="finer-cam(gamma=0)"), atol=1e-6)
    np.testing.assert_allclose(as_dict, cw.compute_cam(small, x), atol=1e-5)
    with pytest.raises(ValueError, match="a number >= 0 and <= 10"):
        cw.compute_cam(small, x, method="finer-cam", method_options={"gamma": -1})


def test_a_class_or_a_target_not_both(small, x):
    with pytest.raises(ValueError, match=r"give class_index or target, not both \(a class as a target"):
        cw.compute_cam(small, x, class_index=1, target=targets.ClassScore(1))


def test_unknown_input_size_needs_a_sample():
    model = models.SubclassedCNN()
    with pytest.raises(ValueError, match="pass sample="):
        cw.spatial_layers(model)
    assert cw.spatial_layers(model, np.zeros((1, 32, 32, 3), np.float32)) == ["sub_conv_a", "sub_conv_b"]


def test_preprocess_that_breaks_shape(small, x):
    with pytest.raises(ValueError, match="images after preprocess"):
        cw.compute_cam(small, x, preprocess=lambda p: p[..., 0])


def test_compute_cam_takes_picture_files(small, rng, tmp_path):
    pictures = [rng.integers(0, 256, (32, 32, 3), dtype=np.uint8) for _ in range(2)]
    paths = []
    for i, p in enumerate(pictures):
        paths.append(tmp_path / f"{i}.png")
        Image.fromarray(p).save(paths[-1])
    from_files = cw.compute_cam(small, [str(p) for p in paths], preprocess=lambda x: x / 255.0, class_index=1)
    from_arrays = cw.compute_cam(small, np.stack(pictures).astype(np.float32) / 255.0, class_index=1)
    np.testing.assert_allclose(from_files, from_arrays, atol=1e-6)
    ex = cw.CAMExplorer(small, str(paths[0]), class_index=1)  # detected preprocessing, as compute_cam's
    np.testing.assert_allclose(cw.compute_cam(small, paths[0], class_index=1)[0], ex.cam, atol=1e-6)
    ex.close()
