"""camwidget.engines.scores: class scores written once in keras.ops, for every engine."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from camwidget.engines import scores


def _numpy(values):
    return [keras.ops.convert_to_numpy(v) for v in values]


def test_class_scores_take_the_logits_and_resolve_the_top_class():
    logits = np.array([[1.0, 3.0, 0.5], [2.0, -1.0, 0.0]], np.float32)
    y = keras.ops.softmax(logits, axis=-1)
    s, p, c, chosen = _numpy(scores.class_scores(y, logits, "softmax", "auto", np.array([-1, 2], np.int32)))
    np.testing.assert_allclose(s, logits)
    np.testing.assert_allclose(p, keras.ops.convert_to_numpy(y), rtol=1e-6)
    assert c.tolist() == [1, 2]  # -1: the top class; 2 as asked
    np.testing.assert_allclose(chosen, [3.0, 0.0])


def test_a_single_sigmoid_unit_is_two_classes_scored_minus_z_and_z():
    z = np.array([[0.5], [-2.0]], np.float32)
    y = keras.ops.sigmoid(z)
    s, p, c, chosen = _numpy(scores.class_scores(y, z, "sigmoid", "auto", np.array([-1, 0], np.int32)))
    np.testing.assert_allclose(s, np.concatenate([-z, z], axis=1))
    np.testing.assert_allclose(p[:, 1], 1 / (1 + np.exp(-z[:, 0])), rtol=1e-6)
    assert c.tolist() == [1, 0]
    np.testing.assert_allclose(chosen, [0.5, 2.0])


def test_a_segmentation_scores_each_class_over_the_positions_it_wins():
    # (1, 2, 2, 2): class 1 wins 3 of 4 positions.
    logits = np.array([[[[0.0, 1.0], [0.0, 2.0]], [[3.0, 0.0], [0.0, 4.0]]]], np.float32)
    s, share, c, chosen = _numpy(scores.class_scores(logits, logits, None, "auto", np.array([-1], np.int32), 3))
    np.testing.assert_allclose(share, [[0.25, 0.75]])
    np.testing.assert_allclose(s, [[3.0, 7.0]])  # y_c = sum over the positions predicted as c of s_pc
    assert c.tolist() == [1] and chosen.tolist() == [7.0]


def test_probabilities_softmax_an_output_without_its_own():
    y = np.array([[0.0, np.log(3.0)]], np.float32)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(scores.probabilities(y, None, 3)), [[0.25, 0.75]], rtol=1e-6)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(scores.probabilities(y, "softmax", 3)), y)


def test_the_same_scores_inside_a_traced_pass_of_any_batch_size():
    """The TensorFlow engine calls them in a tf.function traced for (None, C): a dynamic batch axis."""
    traced = tf.function(
        lambda y, classes: scores.class_scores(y, y, None, "auto", classes)[3],
        input_signature=[tf.TensorSpec((None, 3), tf.float32), tf.TensorSpec((None,), tf.int32)],
    ).get_concrete_function()
    y = np.array([[1.0, 5.0, 2.0]] * 4, np.float32)
    np.testing.assert_allclose(traced(tf.constant(y), tf.constant([-1, 0, 2, 1])).numpy(), [5.0, 1.0, 2.0, 5.0])


def test_a_target_replaces_the_class_score():
    y = np.array([[1.0, 2.0], [3.0, 4.0]], np.float32)
    s, p, c, chosen = _numpy(
        scores.output_scores(y, y, None, "auto", np.array([-1, -1], np.int32), lambda out: out[:, 0] * 2.0)
    )
    np.testing.assert_allclose(chosen, [2.0, 6.0])
    np.testing.assert_allclose(s, [[2.0], [6.0]])
    assert c.tolist() == [0, 0]


def test_class_vector_checks_each_class_once():
    assert scores.class_vector(None, 2, 5).tolist() == [-1, -1]
    assert scores.class_vector([1, 4], 2, 5).tolist() == [1, 4]
    with pytest.raises(ValueError, match="out of range"):
        scores.class_vector(5, 1, 5)
    with pytest.raises(TypeError):
        scores.class_vector(1.5, 1, 5)
