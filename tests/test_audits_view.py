"""The audit as a notebook widget: a class selector, a card per cluster (and the class's mean map), the t-SNE
plot, the pictures ranked by suspicion, and a click that opens a CAMExplorer with the audit's method, layer and
class (or target) below; names reach the page escaped."""

from __future__ import annotations

import base64

import numpy as np
import pytest
from test_audit import CLASSES, network, pictures

import camwidget as cw
from camwidget.audits.view import AuditView

HOSTILE = "<b>x</b>"


@pytest.fixture(scope="module")
def view():
    x, y, _ = pictures(16, 3, "watermark", contrast=0.3)
    model = network()  # random weights: the view's wiring does not need a trained model
    names = [HOSTILE, CLASSES[1]]
    found = cw.audit(
        model, x, labels=y, layer="last_conv", method="gradcam++", class_names=names, concepts=0, progress_bar=False
    )
    return found, found.widget()


def test_the_view_shows_each_class_and_its_clusters(view):
    found, shown = view
    assert isinstance(shown, AuditView)
    assert [value for _, value in shown.class_selector.options] == sorted(found.per_class)
    for c, entry in found.per_class.items():
        shown.class_selector.value = c
        assert len(shown.strip.children) == 1 + len(entry.clusters)  # the mean map, then each cluster
        assert shown.embedding.value[:4] == b"\x89PNG"
        ranked = [row for _, row in shown.ranked.options]
        assert ranked == found.ranked(c)[: len(ranked)]
        assert all(found.classes[row] == c for row in ranked)
    assert HOSTILE not in shown.flags.value and HOSTILE not in shown.children[0].value
    bundle = found._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle
    assert base64.b64decode(bundle["image/png"])[:4] == b"\x89PNG"  # the still, for viewers without widgets


def test_a_click_opens_the_picture_in_an_explorer_with_the_same_settings(view):
    found, shown = view
    shown.class_selector.value = 1
    card = shown.strip.children[1]  # the first cluster
    row = found.per_class[1].clusters[0].typical[0]
    button = card.children[-1].children[0].children[1]
    button.click()
    assert shown.opened == row
    explorer = shown.below.children[-1]
    assert isinstance(explorer, cw.CAMExplorer)
    assert explorer.method == "gradcam++"
    assert explorer.layer.endswith("last_conv")
    assert explorer.class_index == 1
    assert np.isfinite(explorer.cam).all()
    explorer.close()


def test_an_audit_of_a_target_opens_an_explorer_of_that_target():
    from camwidget import targets

    x, y, _ = pictures(8, 4)
    target = targets.Unit(1)
    found = cw.audit(network(), x, labels=y, layer="last_conv", target=target, concepts=0, progress_bar=False)
    explorer = found.explorer(3)
    try:
        assert explorer._session.explainer.target is target  # the explorer's one request holds it
        cam = explorer.cam
        np.testing.assert_allclose(cam / cam.sum(), found.masses[3], atol=1e-5)
    finally:
        explorer.close()
