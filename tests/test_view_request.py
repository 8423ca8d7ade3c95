"""camwidget.explorer.view_request: the request value, the View menu by kind, the words of the progress line."""

from __future__ import annotations

from camwidget.explorer.view_request import MODES, ViewRequest, modes_for


def test_the_check_map_is_offered_for_pictures_only():
    assert modes_for("image") == list(MODES)
    for kind in ("signal", "volume"):
        assert "Check map" not in modes_for(kind) and "Concepts" not in modes_for(kind)
        assert "Compare methods" in modes_for(kind)


def test_a_request_says_what_computing_it_does_and_which_controls_ask_for_it():
    request = ViewRequest(1, "conv_b", None, "scorecam", "auto", False, False, mode="Check map", randomize=True)
    assert request.compare == "check"
    assert request.doing() == "checking the Score-CAM at conv_b map (randomisation check)"
    assert ViewRequest(0, "conv_a", 2, "gradcam", "auto", False, False).doing() == "computing Grad-CAM at conv_a"
    controls = request.controls(shown_class=4)
    assert controls["class"] == 4 and controls["follow_top"] and controls["versus"] == -1 and controls["image"] == 1
