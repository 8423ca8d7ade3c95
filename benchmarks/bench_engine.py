"""compute_cam against one compiled forward pass of the same model and against the peer recipes.

    python benchmarks/bench_engine.py [--rounds 15]

VGG16 (random weights), layer block5_conv3, batch 1 and 8. Prints medians and ratios measured in this run.
"""

from __future__ import annotations

import argparse
import warnings

import _timing  # noqa: F401  (quiets TensorFlow before it is imported)
import keras
import numpy as np
import tensorflow as tf
from _timing import medians, table

import camwidget as cw

LAYER = "block5_conv3"


def keras_io_recipe(model: keras.Model, layer: str):
    """The keras.io Grad-CAM example, as published (eager; pools gradients over the batch axis too)."""
    grad_model = keras.models.Model(model.inputs, [model.get_layer(layer).output, model.output])

    def run(img_array, pred_index=None):
        with tf.GradientTape() as tape:
            last_conv_layer_output, preds = grad_model(img_array)
            if pred_index is None:
                pred_index = tf.argmax(preds[0])
            class_channel = preds[:, pred_index]
        grads = tape.gradient(class_channel, last_conv_layer_output)
        pooled_grads = tf.reduce_mean(grads, axis=(0, 1, 2))
        heatmap = last_conv_layer_output[0] @ pooled_grads[..., tf.newaxis]
        heatmap = tf.squeeze(heatmap)
        heatmap = tf.maximum(heatmap, 0) / tf.math.reduce_max(heatmap)
        return heatmap.numpy()

    return run


def hand_written_floor(model: keras.Model, layer: str):
    """Grad-CAM written by hand in one tf.function on keras.Model(inputs, [layer.output, output]): the floor
    for a compiled pass on a flat functional model (it cannot reach nested layers)."""
    grad_model = keras.Model(model.inputs, [model.get_layer(layer).output, model.output])

    @tf.function
    def run(x, classes):
        with tf.GradientTape() as tape:
            activations, scores = grad_model(x, training=False)
            chosen = tf.gather(scores, classes, batch_dims=1)
        weights = tf.reduce_mean(tape.gradient(chosen, activations), axis=(1, 2))
        return tf.einsum("nhwk,nk->nhw", activations, weights)

    return run


def tf_keras_vis_recipe(model: keras.Model, layer: str):
    try:
        from tf_keras_vis.gradcam import Gradcam
        from tf_keras_vis.utils.model_modifiers import ReplaceToLinear
        from tf_keras_vis.utils.scores import CategoricalScore
    except ImportError:
        return None
    gradcam = Gradcam(model, model_modifier=ReplaceToLinear(), clone=True)

    def run(x):
        return gradcam(CategoricalScore([1] * len(x)), x, penultimate_layer=layer)

    return run


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    keras.utils.set_random_seed(0)
    model = keras.applications.VGG16(weights=None)
    warnings.filterwarnings("ignore", message="The structure of `inputs`")  # the keras.io recipe's own warning
    forward = tf.function(lambda x: model(x, training=False))
    recipe = keras_io_recipe(model, LAYER)
    floor = hand_written_floor(model, LAYER)
    vis = tf_keras_vis_recipe(model, LAYER)
    for batch in (1, 8):
        x = np.random.default_rng(0).uniform(-120, 130, (batch, 224, 224, 3)).astype("float32")
        candidates = {
            "compiled forward pass (baseline)": lambda: forward(x).numpy(),
            "camwidget.compute_cam": lambda: cw.compute_cam(model, x, layer=LAYER, class_index=1),
            "hand-written tf.function Grad-CAM": lambda: floor(x, np.ones(batch, np.int32)).numpy(),
            "keras.io recipe (eager)": lambda: recipe(x, 1),
        }
        if vis is not None:
            candidates["tf-keras-vis Gradcam"] = lambda: vis(x)
        results = medians(candidates, args.rounds)
        table(f"VGG16 {LAYER}, batch {batch}, {args.rounds} rounds", results, "compiled forward pass (baseline)")
        ours = results["camwidget.compute_cam"]
        for peer in ("hand-written tf.function Grad-CAM", "keras.io recipe (eager)", "tf-keras-vis Gradcam"):
            if peer in results:
                print(f"  speed-up over {peer}: {results[peer] / ours:.2f}x")


if __name__ == "__main__":
    main()
