"""camwidget.audits.flags: the sentences written out in full, the order of the flags, the strongest values."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from camwidget.audits.flags import Flag, cluster_reason, hint, order, picture_reason, strongest


def test_a_cluster_on_a_corner_reads_as_a_watermark():
    reason = cluster_reason(63, 80, "horse", (), 0.7, "the bottom-left corner", False, True)
    assert reason == (
        "63 of 80 'horse' pictures put 70% of the map on the bottom-left corner, where their pixels are nearly "
        "identical across the class and unlike the other classes': a watermark or a logo?"
    )


def test_clusters_are_numbered_when_the_class_has_others():
    reason = cluster_reason(10, 40, "cross", (0, 2), 0.5, "the border all round (a frame)", False, False)
    assert reason.startswith("10 of 40 'cross' pictures (clusters 0, 2) put 50% of the map on the border")
    assert reason.endswith("nearly identical across the class: a frame or a border?")
    assert "(cluster 1) put" in cluster_reason(3, 9, "a", (1,), 0.4, "the background", False, False)


def test_off_the_mask_says_so():
    reason = cluster_reason(5, 20, "dog", (), 0.62, "the top border", True, True)
    assert reason == (
        "5 of 20 'dog' pictures put 62% of the map outside the object's mask, most of it in the top border: the "
        "context rather than the object?"
    )
    assert picture_reason("a.png", "dog", 0.81, "the left border", True) == (
        "'a.png' ('dog') puts 81% of its map outside the object's mask, most of it in the left border"
    )
    assert picture_reason("b.png", "cat", 0.5, "the top-left corner", False) == (
        "'b.png' ('cat') puts 50% of its map on the top-left corner, where almost every 'cat' picture shows the "
        "same pixels"
    )


def test_hints():
    assert hint("the top-right corner", False) == "a watermark or a logo?"
    assert hint("the background (the same ...)", False) == "the background?"
    assert hint("the left border", False) == "a frame or a border?"
    assert hint("rows 0%-50% and columns 0%-50% of the picture", False) == "a mark the class carries?"
    assert hint("the left border", True) == "the context rather than the object?"


@settings(max_examples=30, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.integers(1, 5), st.floats(0, 1)), max_size=8))
def test_order_is_clusters_first_then_most_pictures_then_most_suspicion(specs):
    flags = [
        Flag("cluster" if is_cluster else "picture", 0, "c", (0,), tuple(range(n)), suspicion=s)
        for is_cluster, n, s in specs
    ]
    ordered = order(flags)
    keys = [(f.kind != "cluster", -len(f.pictures), -f.suspicion) for f in ordered]
    assert keys == sorted(keys) and sorted(map(id, ordered)) == sorted(map(id, flags))


def test_strongest_keeps_ties_in_index_order():
    assert strongest(np.array([0.2, 0.9, 0.2, 0.9, 0.1]), 3).tolist() == [1, 3, 0]


def test_a_flag_as_a_dict_rounds_the_suspicion():
    flag = Flag("picture", 1, "cross", (-1,), (4,), ("x.png",), 0.123456, "the top border", "why")
    assert flag.as_dict() == {
        "kind": "picture",
        "class_index": 1,
        "class_name": "cross",
        "clusters": [-1],
        "pictures": ["x.png"],
        "suspicion": 0.1235,
        "region": "the top border",
        "reason": "why",
    }
