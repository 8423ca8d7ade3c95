import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(__file__))
if os.environ.get("CAMWIDGET_TESTS_WITHOUT_TENSORFLOW"):  # the JAX and torch runs: as where it is not installed
    sys.modules["tensorflow"] = None  # type: ignore[assignment]  # `import tensorflow` now raises ImportError

import functools  # noqa: E402
import socket  # noqa: E402

import keras  # noqa: E402
import models  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


@functools.cache
def _missing_browser() -> str | None:
    import browser_harness

    return None if browser_harness.find_browser() else f"no browser found: {browser_harness.HOW_TO_GET_A_BROWSER}"


@functools.cache
def _missing_registry() -> str | None:
    for host in ("pypi.org", "registry.npmjs.org"):
        try:
            socket.create_connection((host, 443), timeout=5).close()
        except OSError:
            return f"no package registry reachable ({host}:443); these tests install packages"
    return None


# The files that take longest, first: pytest-xdist hands whole files to the test processes in collection order, so
# the long ones start at once and the short ones fill in around them, rather than one long file running alone at
# the end (the same suite took 515 s in one run and 617 s in another, in alphabetical order).
LONGEST_FIRST = ("test_backends.py", "test_notebooks.py", "test_browser.py", "test_memory.py", "test_localization.py")


def pytest_configure(config):
    config.addinivalue_line(
        "markers",
        "backends(*names): runs only under these Keras backends (a JAX or torch module's own tests): skipped in the "
        "TensorFlow run, left out of test_backends.py's JAX and torch runs where not named (they may skip nothing)",
    )


def pytest_collection_modifyitems(config, items):
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: each file's own order is kept
    backend = keras.backend.backend()
    elsewhere = [i for i in items if (m := i.get_closest_marker("backends")) is not None and backend not in m.args]
    if not elsewhere:
        return
    if os.environ.get("CAMWIDGET_TESTS_WITHOUT_TENSORFLOW"):  # test_backends.py's JAX or torch run
        config.hook.pytest_deselected(items=elsewhere)
        items[:] = [i for i in items if i not in elsewhere]
        return
    for item in elsewhere:
        names = " or ".join(item.get_closest_marker("backends").args)
        item.add_marker(pytest.mark.skip(reason=f"runs on Keras's {names} backend: test_backends.py's runs"))


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    """Tests marked `browser` or `network` skip, with the reason in one line, where what they need is
    missing; in CI (CI=true) a missing need is a failure, so that nothing is hidden there."""
    for marker, missing in (("browser", _missing_browser), ("network", _missing_registry)):
        if item.get_closest_marker(marker) is not None:
            reason = missing()
            if reason is not None:
                if IN_CI:
                    pytest.fail(f"{reason} (CI=true: a {marker} test may not be skipped)", pytrace=False)
                pytest.skip(reason)


@pytest.fixture(autouse=True)
def _seed():
    keras.utils.set_random_seed(0)


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.fixture
def batch(rng):
    """Four 32x32 pictures in [0, 1) (test_explain, test_explain_explainer)."""
    return rng.uniform(0, 1, (4, 32, 32, 3)).astype("float32")


@pytest.fixture(scope="session")
def vgg16():
    return keras.applications.VGG16(weights=None)


def seeded(seed: int, build, *args, **kwargs):
    """build(*args, **kwargs) with Keras's random seed set first: the same weights in every run."""
    keras.utils.set_random_seed(seed)
    return build(*args, **kwargs)


@pytest.fixture(scope="session")
def composite_a():
    return seeded(1, models.vgg_composite_input_tensor)


@pytest.fixture(scope="session")
def composite_b():
    return seeded(2, models.vgg_composite_nested)


@pytest.fixture(scope="session")
def small():
    return seeded(3, models.small_cnn)


@pytest.fixture(scope="session")
def flat_model():
    """models.flat_head_cnn with seed 7: the methods' formula tests' model (test_methods, test_methods_added)."""
    return seeded(7, models.flat_head_cnn)


@pytest.fixture(scope="session")
def flat_x():
    """Three 32x32 pictures in [0, 1) for flat_model."""
    return np.random.default_rng(1).uniform(0, 1, (3, 32, 32, 3)).astype("float32")


@pytest.fixture(scope="session")
def model(flat_model):
    """flat_model under the name the methods' formula tests (test_methods*.py) give it; a file's own `model`
    fixture takes its place there."""
    return flat_model


@pytest.fixture(scope="session")
def x(flat_x):
    """flat_x under the name the methods' formula tests give it (reference.CLASSES: a class for each)."""
    return flat_x


@pytest.fixture(scope="session")
def model_file(tmp_path_factory):
    """models.one_conv(7) saved as a .keras file: the model the command line's tests name."""
    path = tmp_path_factory.mktemp("model") / "model.keras"
    models.one_conv(7).save(path)
    return path


MAP_ENTRY_POINTS = (
    "capture",
    "recapture",
    "capture_maps",
    "capture_with_input_gradient",
)  # the engine calls that make maps or captures


@pytest.fixture
def calls(monkeypatch):
    """(entry point, called from inside an Explainer) for every map-making engine call, on every engine class:
    a surface that called an engine's capture or tail pass itself records a False (see test_one_path.py)."""
    from camwidget.engines import engine_for
    from camwidget.explain import Explainer

    def inside_explainer() -> bool:
        frame = sys._getframe(2)
        while frame is not None:
            if isinstance(frame.f_locals.get("self"), Explainer):
                return True
            frame = frame.f_back
        return False

    seen: list[tuple[str, bool]] = []
    for klass in type(engine_for(models.small_cnn())).__mro__:
        for name in MAP_ENTRY_POINTS:
            if name in vars(klass):

                def wrapped(*args, _name=name, _inner=vars(klass)[name], **kw):
                    seen.append((_name, inside_explainer()))
                    return _inner(*args, **kw)

                monkeypatch.setattr(klass, name, wrapped)
    return seen
