"""camwidget.engines.layout: which layers a ModelLayout offers (a map of more than one position, called once,
reaching the output, not the output itself), which it takes by default, and how it resolves a name, on layouts
written by hand."""

from __future__ import annotations

import keras
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from camwidget.engines import MapGeometry
from camwidget.engines.layout import LayerInfo, ModelLayout
from camwidget.errors import LayerError

LAYER = keras.layers.Conv2D(1, 1)  # its type is all a layout reads of it (attention layers, TFSMLayer)

one_layer = st.fixed_dictionaries(
    {
        "grid": st.sampled_from([None, (1, 1), (4, 4), (2, 8)]),
        "calls": st.integers(0, 2),
        "reaches_output": st.booleans(),
        "computes_features": st.booleans(),
        "is_output": st.booleans(),
    }
)


def layout_of(specs, nested=()):
    layers = {}
    for order, (path, spec) in enumerate(specs.items()):
        grid = spec["grid"]
        layers[path] = LayerInfo(
            path=path,
            layer=LAYER,
            shape=None if grid is None else (*grid, 3),
            calls=spec["calls"],
            order=order,
            reaches_output=spec["reaches_output"],
            computes_features=spec["computes_features"],
            geometry=None if grid is None else MapGeometry("image", grid),
            is_output=spec["is_output"],
        )
    return ModelLayout((32, 32, 3), layers, ["out"], [(2,)], nested_models=list(nested))


@settings(max_examples=60, deadline=None)
@given(st.lists(one_layer, min_size=1, max_size=8))
def test_the_offered_layers_and_the_default_follow_the_rules(specs):
    layout = layout_of({f"layer_{i}": spec for i, spec in enumerate(specs)})
    offered = [
        f"layer_{i}"
        for i, s in enumerate(specs)
        if s["grid"] not in (None, (1, 1)) and s["calls"] == 1 and s["reaches_output"] and not s["is_output"]
    ]
    assert layout.spatial_paths() == offered
    features = [p for p in offered if specs[int(p.split("_")[1])]["computes_features"]]
    if features:
        assert layout.default_path() == features[-1]
        assert layout.resolve(None).path == features[-1]
        for path in offered:
            assert layout.resolve(path).path == path
    else:
        with pytest.raises(LayerError, match="no layer with a spatial"):
            layout.default_path()


def test_a_name_resolves_by_its_leaf_and_a_wrong_one_says_what_to_choose():
    good = {"grid": (4, 4), "calls": 1, "reaches_output": True, "computes_features": True, "is_output": False}
    layout = layout_of(
        {
            "base/conv_a": good,
            "base/twice": {**good, "calls": 2},
            "base/pooled": {**good, "grid": (1, 1)},
            "side": {**good, "reaches_output": False},
            "vector": {**good, "grid": None},
            "head/conv_b": good,
        },
        nested=["base", "head"],
    )
    assert layout.resolve("conv_b").path == "head/conv_b"  # its leaf name alone, where only one layer has it
    refused = {
        "conv_c": r"layer 'conv_c' not found; closest: 'head/conv_b'",
        "base": r"'base' is a nested model, not a layer; choose one of its layers, e.g.",
        "base/twice": r"is called 2 times in one forward pass",
        "base/pooled": r"has a 1x1 output: one position",
        "side": r"the model's output does not depend on layer 'side'",
        "vector": r"layer 'vector' has output several tensors, not a spatial map",
    }
    for name, message in refused.items():
        with pytest.raises(LayerError, match=message):
            layout.resolve(name)
    with pytest.raises(TypeError, match="layer must be a layer name"):
        layout.resolve(3)
