"""Sanity checks (Adebayo et al. 2018): cascading model-parameter randomisation and data randomisation, each a
copy of the model whose maps are compared with the model's by Spearman's rho. Maps come from the Explainer, the
one path from a request to maps."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import keras
import numpy as np

from camwidget import progress
from camwidget.engines import class_vector, engine_for, num_classes
from camwidget.errors import CAMError
from camwidget.explain import Explainer
from camwidget.inputs.feed import Feed, make_feed
from camwidget.inputs.images import model_batch
from camwidget.metrics.common import _check_int


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman's rank correlation of two maps (average ranks for ties).

    Args:
        a, b: two maps of the same size.

    Returns:
        rho in [-1, 1]; 0 where either map is constant.
    """
    from scipy.stats import rankdata

    ra, rb = rankdata(a.ravel()), rankdata(b.ravel())
    if ra.std() == 0 or rb.std() == 0:
        return 0.0
    return float(np.corrcoef(ra, rb)[0, 1])


@dataclasses.dataclass(frozen=True)
class Randomization:
    """Rank correlations of each image's map before and after randomisation.

    Attributes:
        steps: steps[k] names what was randomised (cumulatively) at step k.
        rho: (steps, N) Spearman's rho of each image's map after step k against its map before.
        before: (N, h, w) the maps of the model as given.
        maps: (steps, N, h, w) the maps after each step.
    """

    steps: list[str]
    rho: np.ndarray  # (steps, N)
    before: np.ndarray  # (N, h, w)
    maps: np.ndarray  # (steps, N, h, w)


def copy_model(model: keras.Model) -> keras.Model:
    """A copy with its own weights (the same values): the user's model is never changed.

    Args:
        model: the model to copy.

    Returns:
        keras.models.clone_model of it with its weights set.

    Raises:
        CAMError: Keras cannot clone the model (some subclassed ones); the message says to pass copy=.
    """
    try:
        copy = keras.models.clone_model(model)
    except Exception as exc:  # noqa: BLE001 - Keras refuses some models (subclassed ones): say so
        raise CAMError(
            f"the randomisation checks work on a copy of the model, and Keras could not copy this one ({type(exc).__name__}: "
            f"{str(exc).splitlines()[0] if str(exc) else ''}); pass copy= a function that returns a fresh copy"
        ) from None
    copy.set_weights(model.get_weights())
    return copy


def _reinitialise(layer: keras.layers.Layer, rng: np.random.Generator) -> None:
    """New values for a layer's trainable weights: its own initialisers where it names them (kernel, bias ...),
    else a normal draw with each weight's own spread."""
    for weight in layer.trainable_weights:
        short = weight.path.rsplit("/", 1)[-1] if hasattr(weight, "path") else weight.name
        initializer = getattr(layer, f"{short}_initializer", None)
        if initializer is not None:
            initializer = keras.initializers.get(initializer)
            config = initializer.get_config()
            if "seed" in config:  # drawn from `rng`, so that a check with the same seed gives the same numbers
                config["seed"] = int(rng.integers(2**31 - 1))
                initializer = type(initializer).from_config(config)
            value = initializer(weight.shape, dtype="float32")
            value = np.asarray(value)
            if not np.any(value):  # a zeros initialiser (biases): draw something, so the layer does change
                value = rng.normal(0, 0.01, weight.shape)
        else:
            value = rng.normal(0, float(np.std(weight.numpy())) or 0.01, weight.shape)
        weight.assign(np.asarray(value, np.float32))


def model_randomization(
    model: keras.Model,
    images: Any,
    *,
    layer: str | None = None,
    method: str = "gradcam",
    class_index: Any = None,
    steps: int | None = None,
    seed: int = 0,
    copy: Callable[[], keras.Model] | None = None,
    input: str | int | None = None,
    other_inputs: Any = None,
    **cam_options: Any,
) -> Randomization:
    """Cascading model-parameter randomisation (Adebayo et al. 2018), on a copy of the model.

    Layers with weights are re-initialised from the output down, one more at each step, and each image's map
    (same layer, method and class as before) is compared with its map before by Spearman's rho. A map that
    explains the model decorrelates (rho near 0) as its top layers lose their training.

    Args:
        model: the model (left as it is: the work is done on a copy).
        images: (N, H, W, C) in the model's input space.
        layer: the layer explained (None: compute_cam's default).
        method: the CAM method, as compute_cam takes it.
        class_index: None (each image's top class of the model as given), an int, or one per image.
        steps: how many layers to randomise (at least 1; None: all that have weights).
        seed: the new weights' seed (an int, at least 0).
        copy: a function returning a fresh copy of the model, where Keras cannot clone it.
        input: for a model with several inputs, the one the images go to (a name or index).
        other_inputs: the other inputs' values, as compute_cam takes them (the copy gets the same).
        **cam_options: compute_cam's other options (score, eigen_smooth, ...).

    Returns:
        The :class:`Randomization`.

    Raises:
        CAMError: images, a layer, a class or an option that cannot be right, or a model Keras cannot copy.
    """
    if steps is not None:
        _check_int(steps, "steps", 1)
    seed = _check_int(seed, "seed", 0)
    feed = make_feed(model, input, other_inputs)
    batch = model_batch(images)
    classes = _classes(model, batch, class_index, cam_options.get("output"), feed)
    fed = {"input": input, "other_inputs": other_inputs}
    before = _maps(model, batch, classes, layer=layer, method=method, **fed, **cam_options)
    copied = copy() if copy is not None else copy_model(model)
    with_weights = [(p, l) for p, l in _forward_layers(copied, batch.shape[1:], feed) if l.trainable_weights]
    chosen = list(reversed(with_weights))[: steps or len(with_weights)]
    rng = np.random.default_rng(seed)
    names, rhos, maps = [], [], []
    with progress.bar(len(chosen), "randomising layers"):
        for k, (path, randomised) in enumerate(chosen):
            with progress.stage(k + 1, len(chosen), "randomising layer"):
                _reinitialise(randomised, rng)
                after = _maps(copied, batch, classes, layer=layer, method=method, **fed, **cam_options)
            names.append(path)
            rhos.append([spearman(a, b) for a, b in zip(before, after)])
            maps.append(after)
    return Randomization(names, np.array(rhos), before, np.array(maps))


def _maps(
    model: keras.Model,
    batch: np.ndarray,
    classes: np.ndarray,
    *,
    layer: str | None,
    method: str,
    input: str | int | None,
    other_inputs: Any,
    **cam_options: Any,
) -> np.ndarray:
    """Each image's map for its class, asked of the Explainer (the one path from a request to maps).

    Args:
        model: the model (or its randomised copy); its own Feed is made for it.
        batch: images in the model's input space, (N, H, W, C), already checked.
        classes: the class each map explains, (N,) int.
        layer, method, input, other_inputs, cam_options: as compute_cam takes them.

    Returns:
        float32 maps (N, h, w).

    Raises:
        CAMError: a target= with the class these checks fix, or any error the Explainer raises.
    """
    preprocess = cam_options.pop("preprocess", None)
    if preprocess is not None:
        batch = model_batch(preprocess(batch.copy()), "images after preprocess", single_allowed=False)
    feed = make_feed(model, input, other_inputs)
    # target= given beside the classes these checks fix: the request's one "not both" error
    explainer = Explainer(model, layer=layer, method=method, feed=feed, class_index=classes, **cam_options)
    return explainer.explain(batch)


def _classes(
    model: keras.Model, batch: np.ndarray, class_index: Any, output: str | int | None, feed: Feed | None = None
) -> np.ndarray:
    """The class each image is explained for: as given, else the model's own top class (kept for the copies)."""
    engine = engine_for(model)
    engine.sync()
    layout = engine.layout(batch.shape[1:], feed)
    index = engine.output_index(layout, output)
    classes = class_vector(class_index, len(batch), num_classes(layout, index))
    if (classes < 0).any():
        top = engine.class_probabilities(batch, index, feed).argmax(axis=1)
        classes = np.where(classes < 0, top, classes)
    return classes.astype(np.int32)


def _train_feed(model: keras.Model, input: Any, train_other_inputs: Any, feed: Feed | None) -> Feed | None:
    """The training images' Feed for data_randomization: the images' input as for `images`, the others given."""
    if feed is not None and train_other_inputs is None:
        raise CAMError(
            f"the copy is trained on train_images, and the model also takes {', '.join(map(repr, feed.other_names))}: "
            "give their training values as train_other_inputs= (as other_inputs=, for the training images)"
        )
    if feed is None and train_other_inputs is not None:
        raise CAMError("train_other_inputs= is for a model with several inputs, with input= and other_inputs=")
    return None if feed is None else make_feed(model, input, train_other_inputs)


def _forward_layers(
    model: keras.Model, shape: tuple[int, ...], feed: Feed | None = None
) -> list[tuple[str, keras.layers.Layer]]:
    """Every layer (not model) of `model` in forward order, by path."""
    layout = engine_for(model).layout(shape, feed)
    return [(path, info.layer) for path, info in layout.layers.items()]


def data_randomization(
    model: keras.Model,
    train_images: Any,
    train_labels: Any,
    images: Any,
    *,
    epochs: int = 5,
    layer: str | None = None,
    method: str = "gradcam",
    seed: int = 0,
    copy: Callable[[], keras.Model] | None = None,
    input: str | int | None = None,
    other_inputs: Any = None,
    train_other_inputs: Any = None,
    **fit_options: Any,
) -> Randomization:
    """Data randomisation (Adebayo et al. 2018): maps of a copy trained on shuffled labels against the model's.

    A copy of the model, freshly initialised, is trained on the training images with their labels shuffled;
    each image's map of the copy is compared with the model's own (for the model's top class) by Spearman's
    rho. Maps that explain what the model learned decorrelate.

    Args:
        model: the model (left as it is: the copy is trained).
        train_images: the images the copy is trained on, in the model's input space.
        train_labels: their labels, as the model's loss takes them (shuffled before training).
        images: (N, H, W, C), the images whose maps are compared.
        epochs: how many epochs the copy trains (at least 1).
        layer: the layer explained (None: compute_cam's default).
        method: the CAM method, as compute_cam takes it.
        seed: the shuffle's and the weights' seed (an int, at least 0).
        copy: a function returning a fresh copy of the model, where Keras cannot clone it.
        input: for a model with several inputs, the one the images go to (a name or index).
        other_inputs: the other inputs' values for `images`, as compute_cam takes them.
        train_other_inputs: the other inputs' values for `train_images` (one shared, or one row per image).
        **fit_options: passed to the copy's fit (batch_size, ...).

    Returns:
        The :class:`Randomization` (one step: "labels shuffled").

    Raises:
        CAMError: images, labels, a layer or an option that cannot be right, or a model Keras cannot copy.
    """
    epochs = _check_int(epochs, "epochs", 1)
    seed = _check_int(seed, "seed", 0)
    feed = make_feed(model, input, other_inputs)
    train_feed = _train_feed(model, input, train_other_inputs, feed)
    batch = model_batch(images)
    train = model_batch(train_images, "train_images")
    classes = _classes(model, batch, None, None, feed)
    fed = {"input": input, "other_inputs": other_inputs}
    before = _maps(model, batch, classes, layer=layer, method=method, **fed)
    copied = copy() if copy is not None else keras.models.clone_model(model)  # fresh weights
    rng = np.random.default_rng(seed)
    labels = np.asarray(train_labels)
    shuffled = labels[rng.permutation(len(labels))]
    loss = "sparse_categorical_crossentropy" if labels.ndim == 1 else "categorical_crossentropy"
    copied.compile(optimizer="adam", loss=loss)
    inputs = train if train_feed is None else train_feed.pack(train, train_feed.rows(len(train)))
    copied.fit(inputs, shuffled, epochs=epochs, verbose=0, **fit_options)
    after = _maps(copied, batch, classes, layer=layer, method=method, **fed)
    rho = np.array([[spearman(a, b) for a, b in zip(before, after)]])
    return Randomization(["labels shuffled"], rho, before, after[None])
