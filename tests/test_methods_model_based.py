"""camwidget.methods.model_based: CAM from the Dense weights after global average pooling (and Grad-CAM equal to
it there), a clear error where the layer is not followed by them, and Guided Grad-CAM as guided
backpropagation times the upsampled Grad-CAM, leaving TensorFlow's ReLU gradient alone."""

from __future__ import annotations

import keras
import models
import numpy as np
import pytest
from reference import CLASSES, TOL, activations_and_gradients, as_numpy, assert_close, dense_logits, relu_max

import camwidget as cw

if keras.backend.backend() == "tensorflow":  # the guided checks; JAX and torch run without TensorFlow
    import tensorflow as tf


def test_cam_uses_the_dense_weights_after_global_average_pooling(x):
    m = models.small_cnn(n_classes=3)
    A = as_numpy(keras.Model(m.input, m.get_layer("conv_b").output)(x))
    W = as_numpy(m.get_layer("dense").kernel)
    ref = relu_max(np.stack([A[n] @ W[:, c] for n, c in enumerate(CLASSES)]))
    assert_close(cw.compute_cam(m, x, method="cam", class_index=CLASSES), ref)
    # and on such a model Grad-CAM is the same map (Selvaraju et al., section 3.1)
    np.testing.assert_allclose(cw.compute_cam(m, x, method="gradcam", class_index=CLASSES), ref, atol=TOL)


def test_cam_on_composite_head_and_a_clear_error_elsewhere(composite_b):
    xb = np.random.default_rng(0).uniform(0, 255, (1, 64, 64, 3)).astype("float32")
    head = composite_b.get_layer("head")
    A = as_numpy(head.get_layer("head_conv")(composite_b.get_layer("vgg16")(xb)))
    W = as_numpy(head.get_layer("head_dense").kernel)
    refs = [relu_max(A @ W[:, c]) for c in range(5)]
    assert any(r.max() > 0 for r in refs)
    for c, ref in enumerate(refs):
        np.testing.assert_allclose(cw.compute_cam(composite_b, xb, method="cam", class_index=c), ref, atol=TOL)
    with pytest.raises(
        ValueError,
        match=r"CAM \(Zhou et al. 2016\) needs layer 'vgg16/block5_conv3'.*GlobalAveragePooling2D.*block5_pool.*'gradcam'",
    ):
        cw.compute_cam(composite_b, xb, method="cam", layer="vgg16/block5_conv3")


def test_cam_error_on_flatten_head(model, x):
    with pytest.raises(ValueError, match="after it come: flat, dense"):
        cw.compute_cam(model, x, layer="conv_c", method="cam")


def guided_relu(v):
    @tf.custom_gradient
    def relu(v):
        y = tf.nn.relu(v)

        def grad(dy):
            return dy * tf.cast(dy > 0, dy.dtype) * tf.cast(y > 0, dy.dtype)

        return y, grad

    return relu(v)


def ref_guided_backprop(model, x, classes):
    """The flat-head model's forward pass rewritten with tf ops and a guided ReLU."""
    L = model.get_layer

    def conv(layer, v):
        return guided_relu(tf.nn.conv2d(v, L(layer).kernel, 1, "SAME") + L(layer).bias)

    xt = tf.convert_to_tensor(x)
    with tf.GradientTape() as tape:
        tape.watch(xt)
        v = conv("conv_a", xt)
        v = tf.nn.max_pool2d(v, 2, 2, "VALID")
        v = conv("conv_c", conv("conv_b", v))
        z = dense_logits(L("dense"), tf.reshape(v, (len(x), -1)))
        y = tf.reduce_sum(tf.stack([z[n, c] for n, c in enumerate(classes)]))
    return tape.gradient(y, xt).numpy()


@pytest.mark.tensorflow_only
def test_guided_gradcam_is_guided_backprop_times_upsampled_gradcam(model, x):
    A, G = activations_and_gradients(model, "conv_c", x, CLASSES)
    gradcam = relu_max((A * G.mean(axis=(1, 2), keepdims=True)).sum(-1))
    up = tf.image.resize(gradcam[..., None].astype(np.float32), (32, 32), method="bilinear")[..., 0].numpy()
    saliency = np.sqrt((ref_guided_backprop(model, x, CLASSES).astype(np.float64) ** 2).sum(-1))
    cam = cw.compute_cam(model, x, layer="conv_c", method="guided-gradcam", class_index=CLASSES)
    assert cam.shape == (3, 32, 32)  # input resolution
    assert_close(cam, relu_max(up * saliency))
    plain = keras.Model(model.input, model.output)  # not equal to the plain (unguided) gradient: the guide works
    xt = tf.convert_to_tensor(x)
    with tf.GradientTape() as tape:
        tape.watch(xt)
        z = plain(xt)
    assert np.abs(tape.gradient(z, xt).numpy()).sum() > 0


@pytest.mark.tensorflow_only
def test_guided_gradcam_leaves_relu_gradient_alone(model, x):
    cw.compute_cam(model, x, layer="conv_c", method="guided-gradcam")
    v = tf.constant([-1.0, 2.0])
    with tf.GradientTape() as tape:
        tape.watch(v)
        y = tf.reduce_sum(tf.nn.relu(v) * tf.constant([1.0, -3.0]))
    np.testing.assert_array_equal(tape.gradient(y, v).numpy(), [0.0, -3.0])  # not zeroed by a guided gradient
