"""camwidget.engines.tail: the function that runs only the layers after a layer equals those layers called by
hand (None where the model shows no graph), and the Dense kernel CAM reads after global average pooling."""

from __future__ import annotations

import keras
import models
import numpy as np
import pytest
from reference import chain

from camwidget.engines import engine_for
from camwidget.engines.tail import gap_dense_kernel, tail_function
from camwidget.errors import CAMError


def test_the_tail_runs_the_layers_after_the_layer(rng):
    x = rng.uniform(0, 1, (2, 32, 32, 3)).astype("float32")
    small = models.small_cnn(name="tail_small")
    A = keras.Model(small.input, small.get_layer("conv_a").output)(x)
    L = small.get_layer
    want = chain(L("pool_a"), L("conv_b"), L("gap"), L("dense"))(A)
    got = tail_function(small, "conv_a", 0)(A)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(got), keras.ops.convert_to_numpy(want), atol=1e-6)
    deep = models.nested_three_deep()
    middle = deep.get_layer("middle")
    A = middle.get_layer("inner")(x)
    want = chain(middle.get_layer("mid_conv"), deep.get_layer("outer_gap"), deep.get_layer("outer_dense"))(A)
    got = tail_function(deep, "middle/inner/deep_conv", 0)(A)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(got), keras.ops.convert_to_numpy(want), atol=1e-6)
    subclassed = models.SubclassedCNN()
    subclassed(x)
    assert tail_function(subclassed, "sub_conv_b", 0) is None


def test_cam_reads_the_dense_kernel_after_pooling_and_refuses_other_heads(model):
    small = models.small_cnn(name="tail_kernel")
    info = engine_for(small).layout((32, 32, 3)).resolve("conv_b")
    kernel = gap_dense_kernel(small, info)
    assert kernel.dtype == np.float32
    np.testing.assert_array_equal(kernel, keras.ops.convert_to_numpy(small.get_layer("dense").kernel))
    flat = engine_for(model).layout((32, 32, 3)).resolve("conv_c")  # conftest's flat-head model
    with pytest.raises(CAMError, match="after it come: flat, dense"):
        gap_dense_kernel(model, flat)
