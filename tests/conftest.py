import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(__file__))

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

import models  # noqa: E402


@pytest.fixture(autouse=True)
def _seed():
    keras.utils.set_random_seed(0)


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.fixture(scope="session")
def vgg16():
    return keras.applications.VGG16(weights=None)


@pytest.fixture(scope="session")
def composite_a():
    keras.utils.set_random_seed(1)
    return models.vgg_composite_input_tensor()


@pytest.fixture(scope="session")
def composite_b():
    keras.utils.set_random_seed(2)
    return models.vgg_composite_nested()


@pytest.fixture(scope="session")
def small():
    keras.utils.set_random_seed(3)
    return models.small_cnn()
