"""camwidget.pipeline.model_file: a MODEL named on the command line, a .keras file loaded in Keras's safe mode
or module:function, and one line for each way it can fail."""

from __future__ import annotations

import os

import keras
import models
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from keras import layers
from models import write_picture

from camwidget.command_line import main
from camwidget.pipeline.model_file import UsageError, call_spec, first_line, load_model


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


def test_a_model_file_loads_with_its_weights(model_file):
    loaded = load_model(str(model_file))
    for got, want in zip(loaded.get_weights(), models.one_conv(7).get_weights(), strict=True):
        np.testing.assert_array_equal(got, want)


def test_module_function_is_called_and_each_failure_is_one_line(tmp_path, monkeypatch):
    (tmp_path / "zoo.py").write_text(
        "def build():\n    return 'the model'\n\n"
        "def broken():\n    raise ValueError('no weights here\\nsecond line')\n\n"
        "not_callable = 3\n"
    )
    (tmp_path / "unimportable.py").write_text("raise RuntimeError('import failed\\nmore')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert load_model("zoo:build") == "the model" and call_spec("--target", "zoo:build") == "the model"
    for spec, says in [
        ("zoo:broken", "MODEL 'zoo:broken': broken() failed: ValueError: no weights here"),
        ("zoo:not_callable", "MODEL 'zoo:not_callable': module 'zoo' has no function 'not_callable'"),
        ("zoo:missing", "MODEL 'zoo:missing': module 'zoo' has no function 'missing'"),
        ("unimportable:f", "MODEL 'unimportable:f': cannot import module 'unimportable' (import failed)"),
        (":build", "MODEL ':build': expected module:function"),
        ("zoo:", "MODEL 'zoo:': expected module:function"),
        ("model", "MODEL must be a .keras file or module:function, not 'model'"),
        (str(tmp_path / "missing.keras"), f"model file {str(tmp_path / 'missing.keras')!r} does not exist"),
        (str(tmp_path / "missing.h5"), "does not exist"),
    ]:
        with pytest.raises(UsageError) as caught:
            load_model(spec)
        assert says in str(caught.value) and "\n" not in str(caught.value), spec


LINE_BREAKS = "\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"  # what str.splitlines splits at (Python's docs)


@given(st.text(st.sampled_from(["a", " ", "\u00e9", *LINE_BREAKS]), max_size=20))
def test_the_first_line_of_any_message(message):
    """The message's first line, whole (up to the first line break), or the error's type for an empty one."""
    line = first_line(ValueError(message))
    text = message.strip()
    if not text:
        assert line == "ValueError"
    else:
        rest = text[len(line) :]
        assert line and text.startswith(line) and not set(line) & set(LINE_BREAKS) and rest[:1] in ("", *LINE_BREAKS)
