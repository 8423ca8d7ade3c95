"""camwidget.pipeline.model_file: a MODEL named on the command line, a .keras file loaded in Keras's safe mode
or module:function, and one line for each way it can fail."""

from __future__ import annotations

import os

import keras
from keras import layers
from models import write_picture

from camwidget.command_line import main


def test_keras_is_new_enough_for_safe_mode():
    import tomllib

    with open(os.path.join(os.path.dirname(__file__), "..", "pyproject.toml"), "rb") as f:
        dependencies = tomllib.load(f)["project"]["dependencies"]
    assert any(d.replace(" ", "").startswith("keras>=3.14") for d in dependencies)
    major, minor = (int(p) for p in keras.__version__.split(".")[:2])
    assert (major, minor) >= (3, 14)


def test_a_model_file_with_python_code_is_refused_not_run(tmp_path, capsys):
    """Safe mode: a Lambda layer's function is never deserialised (its code would run)."""
    inp = keras.Input((32, 32, 3))
    x = layers.Lambda(lambda t: t * 2.0)(inp)
    x = layers.Conv2D(4, 3, padding="same", name="conv")(x)
    model = keras.Model(inp, layers.Dense(3, activation="softmax")(layers.GlobalAveragePooling2D()(x)))
    model.save(tmp_path / "lambda.keras")
    write_picture(tmp_path / "photos" / "a.png", 1)
    code = main(["explain", str(tmp_path / "lambda.keras"), str(tmp_path / "photos"), "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 2 and "Lambda" in err and "safe_mode" in err and err.count("\n") == 1
    assert not (tmp_path / "o").exists()
