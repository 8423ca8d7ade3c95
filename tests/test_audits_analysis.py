"""camwidget.audits.analysis: cw.audit's settings and what it says about a class it cannot cluster, and a
target= explained as explain_many explains it (the same request path); the whole-audit known answers are in
test_audit.py."""

from __future__ import annotations

import numpy as np
import pytest
from test_audit import SIZE, pictures, run, trained

import camwidget as cw
from camwidget import targets
from camwidget.errors import CAMError


@pytest.fixture(scope="module")
def honest():
    """Trained on clear shapes and no watermark (as test_audit's `honest`)."""
    return trained(None, 1500, 5, 0.5, 2)


def test_a_class_with_too_few_pictures_is_said_and_the_rest_kept(honest):
    x, y, _ = pictures(20, 0)
    y = np.ones(20, int)
    y[:2] = 0
    found = run(honest, x, y)
    assert "'circle' has 2 pictures: at least 3 are needed" in " ".join(found.notes)
    assert found.per_class[0].clusters == [] and (found.cluster[found.classes == 0] == -1).all()
    assert found.per_class[1].clusters and (found.cluster[found.classes == 1] >= 0).all()


def test_bad_settings_are_named(honest):
    x, y, _ = pictures(6, 0)
    with pytest.raises(ValueError, match="side .* from 4 to 64"):
        run(honest, x, y, side=2)
    with pytest.raises(ValueError, match="max_clusters"):
        run(honest, x, y, max_clusters=0)


def test_public_names():
    assert cw.audit.__module__ == "camwidget.audits.analysis"
    assert cw.Audit.__name__ == "Audit"
    assert {"audit", "Audit", "concepts"} <= set(cw.__all__)


def reference_masses(model, x, **settings):
    """explain_many's maps for the same pictures, each divided by its sum (the layer's map is 16 x 16, the
    audit's grid: no resizing)."""
    cams = [item.cam for item in cw.explain_many(model, x, layer="last_conv", progress_bar=False, **settings)]
    assert all(cam.shape == (SIZE // 2, SIZE // 2) for cam in cams)
    return np.stack([cam / cam.sum() for cam in cams])


def test_a_target_is_explained_as_explain_many_explains_it(honest):
    x, y, _ = pictures(24, 7)
    target = targets.Unit(1)
    found = run(honest, x, y, target=target)
    np.testing.assert_array_equal(found.classes, y)  # grouped by the labels
    np.testing.assert_allclose(found.masses, reference_masses(honest, x, target=target), atol=1e-6)
    # not the classes' maps: the circles' maps (class 0) differ from those of unit 1
    circles = np.flatnonzero(y == 0)
    by_class = reference_masses(honest, x[circles], class_index=0)
    assert np.abs(found.masses[circles] - by_class).sum(axis=(1, 2)).mean() > 0.1
    assert found.settings["target"] is target


def test_a_target_without_labels_is_one_group(honest):
    x, _, _ = pictures(12, 8)
    found = cw.audit(honest, x, layer="last_conv", target=targets.Unit(0), concepts=2, progress_bar=False)
    assert found.class_names == ["target"] and list(found.per_class) == [0]
    assert (found.classes == 0).all() and found.per_class[0].concept_share is None  # no class to share
    np.testing.assert_allclose(found.masses, reference_masses(honest, x, target=targets.Unit(0)), atol=1e-6)


def test_a_target_is_refused_as_explain_many_refuses_it(honest):
    x, y, _ = pictures(6, 0)
    with pytest.raises(TypeError, match="target must be a function of the model's output"):
        run(honest, x, y, target="cross")
    with pytest.raises(CAMError, match="'scorecam' explains a class and cannot take target= yet"):
        run(honest, x, y, target=targets.Unit(1), method="scorecam")
