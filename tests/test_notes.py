"""camwidget.notes: what a model is, said wherever its maps are shown (a note it carries, or one given)."""

from __future__ import annotations

import models
import pytest
from hypothesis import given
from hypothesis import strategies as st

from camwidget import notes


def test_a_marked_model_carries_its_note_and_keras_does_not_track_it():
    model = models.small_cnn(name="noted")
    before = [v.path for v in model.variables]
    assert notes.note_of(model) is None
    notes.mark(model)
    assert notes.note_of(model) == notes.STAND_IN
    notes.mark(model, notes.CHANGED_STAND_IN)
    assert notes.note_of(model) == notes.CHANGED_STAND_IN
    assert [v.path for v in model.variables] == before and notes.CHANGED_STAND_IN not in str(model.get_config())


def test_a_given_note_wins_a_blank_one_clears_and_a_non_string_is_refused():
    model = models.small_cnn(name="noted")
    notes.mark(model)
    assert notes.note_of(model, "  fine-tuned on 40 x-rays ") == "fine-tuned on 40 x-rays"
    assert notes.note_of(model, "   ") is None  # the user says there is nothing to add
    assert notes.note_of(object(), "given") == "given"  # any model, marked or not
    with pytest.raises(TypeError, match="note must be a string, not int"):
        notes.note_of(model, 3)


def test_the_stand_in_notes_say_what_the_maps_show():
    assert notes.STAND_IN.startswith("random weights") and "not what a trained model sees" in notes.STAND_IN
    assert "weights have changed since" in notes.CHANGED_STAND_IN


@given(st.text(max_size=30), st.one_of(st.none(), st.text(max_size=30)))
def test_a_title_gets_the_note_under_it_in_brackets(title, note):
    shown = notes.titled(title, note)
    if note:
        assert shown.startswith(title + "\n") and shown[len(title) + 1 :] == f"({note})"
    else:
        assert shown == title
