"""Smoke test of camwidget as a user installs it: run by .ci/run with the wheel's venv, from outside the source tree.

It catches what an editable install hides: a package-data file missing from the wheel, a test-only import, a
console script that does not start. Usage: ``python wheel_smoke.py <venv folder>``.
"""

import os
import subprocess
import sys
from importlib import resources
from pathlib import Path


def main(venv: Path) -> None:
    """Import the installed camwidget, compute one map, check the front-end assets and the command line.

    Args:
        venv: The virtual environment the wheel was installed into; camwidget must be imported from it.

    Raises:
        AssertionError: When any check fails (the message says which).
    """
    import camwidget as cw

    where = Path(cw.__file__).resolve()
    assert where.is_relative_to(venv.resolve()), f"camwidget imported from {where}, not from the venv {venv}"
    assert "site-packages" in where.parts, f"camwidget at {where} is not an installed package"

    import keras
    import numpy as np

    inputs = keras.Input((16, 16, 3))
    features = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="features")(inputs)
    outputs = keras.layers.Dense(3)(keras.layers.GlobalAveragePooling2D()(features))
    model = keras.Model(inputs, outputs)
    images = np.random.default_rng(0).random((2, 16, 16, 3), dtype=np.float32)
    maps = np.asarray(cw.compute_cam(model, images))
    assert maps.shape == (2, 16, 16), maps.shape
    assert np.isfinite(maps).all() and maps.min() >= 0.0 and maps.max() <= 1.0

    package = resources.files("camwidget")
    for asset in ("static/overlay.js", "data/imagenet_classes.json"):
        assert (package / asset).is_file(), f"{asset} is missing from the installed package"
        assert (package / asset).read_bytes(), f"{asset} is empty in the installed package"

    script = Path(sys.executable).parent / "camwidget"
    assert script.is_file(), f"the console script {script} was not installed"
    helped = subprocess.run([str(script), "explain", "--help"], capture_output=True, text=True, check=True)
    assert "usage" in helped.stdout.lower(), helped.stdout
    told = subprocess.run([str(script), "--version"], capture_output=True, text=True, check=True)
    assert cw.__version__ in told.stdout + told.stderr, (told.stdout, cw.__version__)
    print(f"wheel smoke test passed: camwidget {cw.__version__} from {where.parent}")


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    main(Path(sys.argv[1]))
