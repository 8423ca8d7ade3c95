"""Deep Feature Factorization (Collins, Achanta and Süsstrunk, "Deep Feature Factorization for Concept
Discovery", ECCV 2018): the concepts a layer sees across one or many pictures.

    found = cw.concepts(model, images, n=4)
    found.maps[i, j]        # where concept j lies in picture i (the layer's grid)
    found.top_classes[j]    # the classes concept j raises most: [(class, name, value), ...]

A layer's activations over N pictures, A (N*h*w positions, K channels), non-negative after a ReLU, are
factorised by non-negative matrix factorisation into n concepts: A ~ W H, W (N*h*w, n) >= 0 says how strongly
each concept is present at each position, H (n, K) >= 0 is each concept's channel profile. A concept found
over many pictures is a part the network sees again and again (a face, a wheel, a watermark).

What a concept does for class c, to first order (a Taylor step of the class score y_c at A): its
contribution in picture i is r_ijc = sum_p W_ij(p) <H_j, dy_c/dA_i(p)>. For a layer followed by global average
pooling and a dense layer (y_c = b_c + sum_k V_kc mean_p A_k(p)) this is exact up to the factorisation error:
sum_j r_ijc = y_c - b_c; it is then Collins et al.'s (and pytorch-grad-cam's) "concept through the classifier".
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

MAX_CLASSES = 20  # classes whose gradients are taken (one backward pass each) when none are named


@dataclass
class Concepts:
    """The concepts of one layer over a set of pictures (see the module's docstring for the formulas)."""

    layer: str  # the layer's path
    components: np.ndarray  # H (n, K): each concept's channel profile, >= 0
    maps: np.ndarray  # W (N, n, h, w): each concept's strength at each position of each picture, >= 0
    classes: list[int]  # the classes whose contributions were computed (columns of `contributions`)
    class_names: list[str]  # their names
    contributions: np.ndarray  # r (N, n, len(classes)): concept j's first-order part of picture i's class score
    top_classes: list[list[tuple[int, str, float]]] = field(default_factory=list)  # per concept, best first
    error: float = 0.0  # relative reconstruction error ||A - WH||_F / ||A||_F
    notes: list[str] = field(default_factory=list)  # what was done to the data that the user should know

    @property
    def n(self) -> int:
        return int(self.components.shape[0])

    def normalised_maps(self) -> np.ndarray:
        """The maps with each concept divided by its largest value over all pictures (0..1, zeros stay zero)."""
        peak = self.maps.max(axis=(0, 2, 3), keepdims=True)
        return np.divide(self.maps, peak, out=np.zeros_like(self.maps), where=peak > 0)

    def class_share(self, pictures: Sequence[int] | np.ndarray, class_index: int) -> np.ndarray:
        """Each concept's share of class `class_index`'s evidence over `pictures`: ReLU(sum_i r_ijc) divided
        by its sum over concepts (n,), zeros where no concept raises the class."""
        if class_index not in self.classes:
            raise ValueError(f"class {class_index} was not among the classes computed: {self.classes}")
        column = self.classes.index(class_index)
        raised = np.maximum(self.contributions[np.asarray(pictures, int), :, column].sum(axis=0), 0.0)
        total = raised.sum()
        return raised / total if total > 0 else np.zeros_like(raised)


def concepts(
    model: Any,
    images: Any,
    n: int,
    layer: str | None = None,
    *,
    classes: Sequence[int] | None = None,
    class_names: Sequence[str] | None = None,
    preprocess: Callable[[np.ndarray], np.ndarray] | None = None,
    batch_size: int = 32,
    seed: int = 0,
    max_iter: int = 200,
    tol: float = 1e-3,
) -> Concepts:
    """Deep Feature Factorization of `layer`'s activations over `images` into `n` concepts.

    Args:
        model: a Keras model (never changed).
        images: (N, H, W, C) or one (H, W, C) in the model's input space, or picture files (paths, PIL images)
            read and preprocessed as :func:`camwidget.compute_cam` reads them.
        n: the number of concepts, 1 to min(K, positions) (K the layer's channels, positions N*h*w).
        layer: a layer name or path (:func:`camwidget.spatial_layers`); None: compute_cam's default layer.
        classes: the classes whose contributions are computed (one backward pass each); None: every class if
            the model has at most 20, else the 20 most often predicted on these pictures.
        class_names: names for the classes (default: the model's ImageNet names or "class i").
        preprocess: for picture files, a function of RGB 0-255 (as compute_cam).
        batch_size: pictures per pass.
        seed: seeds the factorisation (scikit-learn's NMF, nndsvda start), so a result is repeatable.
        max_iter, tol: NMF's iterations at most and its stopping tolerance (scikit-learn's coordinate descent;
            1e-3 stops where the error no longer moves in its third digit, about 5x sooner than 1e-4).

    Returns:
        A :class:`Concepts`: H, W as maps, the first-order contributions r_ijc and each concept's top classes
        (mean over pictures of r_ijc, best first, at most 3 with a positive value).

    Raises:
        ValueError: `n` not an int in range; a class out of range; images that are not images.
    """
    from sklearn.decomposition import NMF
    from sklearn.exceptions import ConvergenceWarning

    from camwidget.classes import resolve_class_names
    from camwidget.explain import Explainer
    from camwidget.explain.pictures import are_pictures, input_rank, pictures_batch
    from camwidget.inputs.images import model_batch

    if isinstance(n, bool) or not isinstance(n, (int, np.integer)):
        raise ValueError(f"n (the number of concepts) must be a whole number from 1 to the layer's channels, not {n!r}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, not {batch_size!r}")
    if are_pictures(images):
        batch = pictures_batch(model, images, preprocess)
    else:
        batch = model_batch(images, rank=input_rank(model))
        if preprocess is not None:
            batch = model_batch(preprocess(batch.copy()), "images after preprocess", single_allowed=False)
    explainer = Explainer(model, layer=layer)
    layout = explainer.layout(batch.shape[1:])
    info, output, n_classes = explainer.resolve(layout)
    geometry = explainer.geometry(info)
    if geometry.kind != "image":
        raise ValueError(f"concepts need an image layer (N, h, w, K); {info.path!r} reads as {geometry.kind} maps")

    # One pass for the activations and the predicted classes (gradient of each picture's top class, unused).
    chunks = [batch[s : s + batch_size] for s in range(0, len(batch), batch_size)]
    first = [
        explainer.capture(x, [info], explainer.classes(None, len(x), n_classes), output).at(info.path) for x in chunks
    ]
    activations = np.concatenate([c.activations for c in first]).astype(np.float32)
    N, h, w, K = activations.shape
    positions = N * h * w
    if not 1 <= n <= min(K, positions):
        raise ValueError(
            f"n (the number of concepts) must be from 1 to {min(K, positions)} (layer {info.path!r} has {K} channels "
            f"and {positions} positions over these pictures), not {n}"
        )
    notes: list[str] = []
    lowest = float(activations.min())
    if lowest < 0:
        if lowest < -1e-6 * max(float(activations.max()), 1e-12):
            notes.append(
                f"layer {info.path!r} has negative activations (lowest {lowest:.3g}); they were set to 0 for the "
                "factorisation, which needs non-negative data (a layer after a ReLU has none)"
            )
        activations = np.maximum(activations, 0.0)

    A = activations.reshape(positions, K)
    nmf = NMF(n_components=int(n), init="nndsvda", random_state=seed, max_iter=max_iter, tol=tol)
    with warnings.catch_warnings(record=True) as caught:  # said in words in `notes`, not on stderr
        warnings.simplefilter("always", ConvergenceWarning)
        W = nmf.fit_transform(A).astype(np.float32)
    H = nmf.components_.astype(np.float32)
    norm = float(np.linalg.norm(A))
    error = float(np.linalg.norm(A - W @ H) / norm) if norm > 0 else 0.0
    if any(issubclass(said.category, ConvergenceWarning) for said in caught):
        notes.append(
            f"the factorisation stopped at max_iter={max_iter} iterations before its change fell under tol={tol} "
            f"(relative error {error:.3g}); a larger max_iter= fits closer"
        )
    for said in caught:
        if not issubclass(said.category, ConvergenceWarning):
            warnings.warn_explicit(said.message, said.category, said.filename, said.lineno)  # any other: as it was

    predicted = np.concatenate([c.class_index for c in first])
    chosen = _chosen_classes(classes, n_classes, predicted)
    contributions = np.zeros((N, int(n), len(chosen)), np.float32)
    W_maps = W.reshape(N, h, w, int(n))
    for column, c in enumerate(chosen):
        start = 0
        for x in chunks:
            grads = explainer.capture(x, [info], np.full(len(x), c, np.int32), output).at(info.path).gradients
            # r_ijc = sum_p W_ij(p) <H_j, G_ic(p)>
            projected = np.einsum("nhwk,jk->nhwj", grads.astype(np.float32), H)
            contributions[start : start + len(x), :, column] = np.einsum(
                "nhwj,nhwj->nj", W_maps[start : start + len(x)], projected
            )
            start += len(x)
    names = resolve_class_names(class_names, n_classes)
    mean = contributions.mean(axis=0)  # (n, classes)
    top = []
    for j in range(int(n)):
        order = np.argsort(-mean[j])[:3]
        top.append([(chosen[k], names[chosen[k]], float(mean[j, k])) for k in order if mean[j, k] > 0])
    return Concepts(
        layer=info.path,
        components=H,
        maps=np.ascontiguousarray(W_maps.transpose(0, 3, 1, 2)),
        classes=chosen,
        class_names=[names[c] for c in chosen],
        contributions=contributions,
        top_classes=top,
        error=error,
        notes=notes,
    )


def _chosen_classes(classes: Sequence[int] | None, n_classes: int, predicted: np.ndarray) -> list[int]:
    if classes is None:
        if n_classes <= MAX_CLASSES:
            return list(range(n_classes))
        counts = np.bincount(predicted, minlength=n_classes)
        return [int(c) for c in np.argsort(-counts, kind="stable")[:MAX_CLASSES]]
    chosen = [int(c) for c in classes]
    bad = [c for c in chosen if not 0 <= c < n_classes]
    if bad or not chosen:
        raise ValueError(f"classes must be class indices from 0 to {n_classes - 1}, not {list(classes)!r}")
    return list(dict.fromkeys(chosen))
