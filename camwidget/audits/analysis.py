"""cw.audit: where a model looks across a whole data set, and whether it is cheating (Spectral Relevance
Analysis, SpRAy: Lapuschkin et al., "Unmasking Clever Hans predictors and assessing what machines really
learn", Nature Communications 10, 1096, 2019).

    found = cw.audit(model, "photos/", labels=labels)
    for flag in found.flags():
        print(flag.reason)
    found                      # in a notebook: the audit as a widget

The stages, one module each: :mod:`collect` (maps through explain_many, kept downsampled), :mod:`regions`
(where the mass lies, the pixels a class shares), :mod:`clustering` (spectral clusters, eigengap),
:mod:`flags` (suspicion and reasons), :mod:`report` (HTML, CSV, JSON), :mod:`view` (the notebook widget).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from camwidget.audits import flags as flagging
from camwidget.audits.clustering import affinity, one_thread, spectral_clusters
from camwidget.audits.collect import Collected, collect, label_classes, mask_finder, number_of_classes
from camwidget.audits.regions import mask_share, name_region, on_shared, region_shares, shared_pixels
from camwidget.pipeline.batch import Picture, explain_many, find_pictures

if TYPE_CHECKING:
    from camwidget.pipeline.report import Report

MIN_PICTURES = 3  # fewer maps than this cannot be clustered
TYPICAL = 4  # typical pictures shown per cluster
EMBEDDED = 120  # at most this many maps of a class go into its t-SNE plot (0.07 s on one thread; 200: 0.14 s)


@dataclass
class Cluster:
    """One spectral cluster of a class's maps."""

    class_index: int
    number: int  # 0 the largest
    members: np.ndarray  # rows of the audit's picture table
    mean_map: np.ndarray  # (side, side), mass 1
    typical: list[int]  # the members whose maps are nearest the mean map, nearest first
    suspicion: float  # the members' mean suspicion
    region: str  # where the suspect mass lies, in words
    flagged: bool = False

    @property
    def size(self) -> int:
        return len(self.members)


@dataclass
class ClassAudit:
    """One class: its pictures, their mean map and clusters, and the pixels they share."""

    class_index: int
    name: str
    members: np.ndarray  # rows of the audit's picture table
    mean_map: np.ndarray  # (side, side), mass 1
    clusters: list[Cluster] = field(default_factory=list)
    eigenvalues: np.ndarray | None = None  # the Laplacian's smallest eigenvalues (the eigengap chose the count)
    shared: np.ndarray | None = None  # s_c (side, side): how much each cell is the class's own
    concept_share: np.ndarray | None = None  # each concept's share of this class's evidence
    note: str = ""  # why it was not clustered


class Audit:
    """The result of :func:`audit`: per class, per cluster and per picture (see the module's docstring).

    Made by :func:`audit`, not by hand.

    Args:
        model: the model audited.
        found: the pictures' maps (downsampled), classes, predictions and masks, as collected.
        class_names: the classes' names.
        settings: the method, layer, grid side, seed and thresholds the audit ran with.

    Attributes:
        names: each picture's name, in the order audited.
        classes: (N,) each picture's class (its label, or its predicted class without labels).
        masses: (N, side, side) each picture's map on the common grid, summing to 1.
        shares: region name (centre, borders, corners) -> (N,) each picture's share of its map there.
        cluster: (N,) each picture's spectral cluster within its class (-1: not clustered).
        suspicion: (N,) how much of each map lies on what is the same across the class, or off the mask.
    """

    def __init__(self, model: Any, found: Collected, class_names: list[str], settings: dict[str, Any]) -> None:
        self.model = model
        self.class_names = class_names
        self.settings = settings  # method, layer, side, seed, thresholds
        self.pictures = found.pictures
        self.names = [p.name for p in found.pictures]
        self.classes = np.asarray(found.classes, int)
        self.predicted = np.asarray(found.predicted, int)
        self.confidence = np.asarray(found.confidence, np.float32)
        side = settings["side"]
        self.masses = np.stack(found.masses) if found.masses else np.zeros((0, side, side), np.float32)
        self.pixels = np.stack(found.pixels) if found.pixels else np.zeros((0, side, side, 3), np.float32)
        self.has_mask = np.asarray([m is not None for m in found.masks], bool)
        masks = [np.zeros((side, side), np.float32) if m is None else m for m in found.masks]
        self.mask_cells = np.stack(masks) if masks else np.zeros((0, side, side), np.float32)  # 0..1, object = 1
        self.mask_share = np.where(self.has_mask, mask_share(self.masses, self.mask_cells), np.nan)
        self.shares = region_shares(self.masses)
        # one cell of the layer's map, in cells of the grid: how far a map's blur carries mass off a small mark
        self.spread_radius = (
            int(np.ceil(side / min(found.map_shape))) if found.map_shape and min(found.map_shape) < side else 0
        )
        self.cluster = np.full(len(self.names), -1, int)
        self.suspicion = np.zeros(len(self.names), np.float32)
        self.skipped = found.skipped
        self.reused = found.reused  # maps read back from an output folder (the command line's resume)
        self.notes = [f"{name!r} could not be audited: {why}" for name, why in found.skipped] + found.problems
        self.per_class: dict[int, ClassAudit] = {}
        self.concepts: Any = None  # camwidget.dff.Concepts over `concept_rows`
        self.concept_rows: np.ndarray = np.zeros(0, int)
        self._embeddings: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    # -- per class ---------------------------------------------------------------------------------------

    def analyse(self) -> None:
        """Suspicion, clusters and their reasons for every class (called once by :func:`audit`)."""
        seed, top = self.settings["seed"], self.settings["max_clusters"]
        for c in sorted(set(self.classes.tolist())):
            rows = np.flatnonzero(self.classes == c)
            name = self.class_names[c] if c < len(self.class_names) else str(c)
            entry = ClassAudit(c, name, rows, self.masses[rows].mean(axis=0))
            self.per_class[c] = entry
            weights = self._suspect_mass(entry, rows)
            if len(rows) < MIN_PICTURES:
                entry.note = (
                    f"class {name!r} has {len(rows)} picture{'s' * (len(rows) != 1)}: at least {MIN_PICTURES} are "
                    "needed to cluster its maps or tell which pixels it shares; its pictures are listed, not clustered"
                )
                self.notes.append(entry.note)
                continue
            found = spectral_clusters(affinity(self.masses[rows]), top, seed)
            entry.eigenvalues = found.eigenvalues
            self.cluster[rows] = found.labels
            for number in range(found.k):
                members = rows[found.labels == number]
                mean_map = self.masses[members].mean(axis=0)
                distance = ((self.masses[members] - mean_map) ** 2).sum(axis=(1, 2))
                typical = [int(members[i]) for i in np.argsort(distance, kind="stable")[:TYPICAL]]
                suspicion = float(self.suspicion[members].mean())
                region = name_region(weights[found.labels == number].mean(axis=0), self._shared_for_naming(entry))
                flagged = suspicion >= self.settings["cluster_threshold"]
                entry.clusters.append(Cluster(c, number, members, mean_map, typical, suspicion, region, flagged))

    def _suspect_mass(self, entry: ClassAudit, rows: np.ndarray) -> np.ndarray:
        """Each picture's suspect mass per cell (n, side, side), and its suspicion (their sum) stored: on the
        class's shared pixels, or outside its object mask where it has one."""
        masses = self.masses[rows]
        weights = np.zeros_like(masses)
        if len(rows) >= MIN_PICTURES:
            others = self.pixels[self.classes != entry.class_index]
            shared, median = shared_pixels(self.pixels[rows], others if len(others) else None)
            entry.shared = shared
            weights = on_shared(masses, self.pixels[rows], shared, median, self.spread_radius)
        with_mask = self.has_mask[rows]
        if with_mask.any():
            outside = 1.0 - self.mask_cells[rows[with_mask]]
            weights[with_mask] = masses[with_mask] * outside
        self.suspicion[rows] = weights.sum(axis=(1, 2))
        return weights

    def _shared_for_naming(self, entry: ClassAudit) -> np.ndarray | None:
        return None if self.has_mask[entry.members].any() else entry.shared

    # -- what people read --------------------------------------------------------------------------------

    def flags(self) -> list[flagging.Flag]:
        """The clusters and pictures that look like shortcuts, each with its reason, clusters first."""
        found: list[flagging.Flag] = []
        others = len(self.per_class) > 1
        for entry in self.per_class.values():
            in_flagged: set[int] = set()
            outside = bool(self.has_mask[entry.members].any())
            by_region: dict[str, list[Cluster]] = {}  # flagged clusters that name one region make one flag
            for cluster in entry.clusters:
                if cluster.flagged:
                    by_region.setdefault(cluster.region, []).append(cluster)
            for region, clusters in by_region.items():
                rows = np.concatenate([c.members for c in clusters])
                in_flagged.update(int(r) for r in rows)
                numbers = tuple(c.number for c in clusters)
                reason = flagging.cluster_reason(
                    len(rows),
                    len(entry.members),
                    entry.name,
                    numbers if len(entry.clusters) > 1 else (),
                    float(self.suspicion[rows].mean()),
                    region,
                    outside,
                    others,
                )
                found.append(self._flag("cluster", entry, numbers, rows, region, reason))
            for row in entry.members:
                if int(row) in in_flagged or self.suspicion[row] < self.settings["picture_threshold"]:
                    continue
                where = name_region(self.masses[row] * (self.suspicion[row] > 0), None)
                reason = flagging.picture_reason(
                    self.names[row], entry.name, float(self.suspicion[row]), where, outside
                )
                found.append(self._flag("picture", entry, (int(self.cluster[row]),), np.array([row]), where, reason))
        return flagging.order(found)

    def _flag(
        self, kind: str, entry: ClassAudit, clusters: tuple[int, ...], rows: np.ndarray, region: str, reason: str
    ) -> flagging.Flag:
        return flagging.Flag(
            kind,
            entry.class_index,
            entry.name,
            clusters,
            tuple(int(r) for r in rows),
            tuple(self.names[r] for r in rows),
            float(self.suspicion[rows].mean()),
            region,
            reason,
        )

    def ranked(self, class_index: int | None = None) -> list[int]:
        """Rows of the picture table, the most suspect first (with masks: the most map outside the object)."""
        rows = np.arange(len(self.names)) if class_index is None else np.flatnonzero(self.classes == class_index)
        return [int(rows[i]) for i in np.argsort(-self.suspicion[rows], kind="stable")]

    def table(self) -> list[dict[str, Any]]:
        """One row a picture: name, class, top class and its probability, cluster, suspicion, region shares,
        the share inside its mask (None without one)."""
        out = []
        for row, name in enumerate(self.names):
            c = int(self.classes[row])
            entry = {
                "picture": name,
                "class_index": c,
                "class_name": self.per_class[c].name,
                "predicted": int(self.predicted[row]),
                "probability": round(float(self.confidence[row]), 4),
                "cluster": int(self.cluster[row]),
                "suspicion": round(float(self.suspicion[row]), 4),
                "inside_mask": None if not self.has_mask[row] else round(float(self.mask_share[row]), 4),
            }
            entry.update({f"share_{k.replace(' ', '_')}": round(float(v[row]), 4) for k, v in self.shares.items()})
            out.append(entry)
        return out

    def embedding(self, class_index: int) -> tuple[np.ndarray, np.ndarray]:
        """(rows, points (n, 2)): a 2-D t-SNE (scikit-learn, seeded) of the class's maps, at most 120 of them
        (evenly spaced in input order) so that the plot stays quick; a class of fewer than 5 maps: its first
        two principal components."""
        if class_index not in self._embeddings:
            rows = np.flatnonzero(self.classes == class_index)
            if len(rows) > EMBEDDED:
                rows = rows[np.linspace(0, len(rows) - 1, EMBEDDED).round().astype(int)]
            x = self.masses[rows].reshape(len(rows), -1).astype(np.float64)
            if len(rows) >= 5:
                from sklearn.manifold import TSNE

                perplexity = min(30.0, (len(rows) - 1) / 3)
                tsne = TSNE(2, perplexity=perplexity, random_state=self.settings["seed"], init="pca", max_iter=250)
                with one_thread():
                    points = tsne.fit_transform(x)
            else:
                centred = x - x.mean(axis=0)
                u, s, _ = np.linalg.svd(centred, full_matrices=False)
                points = np.zeros((len(rows), 2))
                points[:, : min(2, u.shape[1])] = (u * s)[:, :2]
            self._embeddings[class_index] = (rows, np.asarray(points, np.float32))
        return self._embeddings[class_index]

    def explorer(self, row: int) -> Any:
        """A CAMExplorer of one picture of the audit, with the audit's method, layer and class (or target)."""
        from camwidget.explorer.widget import CAMExplorer

        return CAMExplorer(
            self.model,
            [self.pictures[row].source],
            class_names=self.class_names if self.settings["target"] is None else None,  # a target is its own class
            layer=self.settings["layer"],
            method=self.settings["method"],
            class_index=None if self.settings["target"] is not None else int(self.classes[row]),
            target=self.settings["target"],
            preprocess=self.settings["preprocess"],
        )

    def widget(self) -> Any:
        """The audit as a notebook widget (:class:`camwidget.audits.view.AuditView`)."""
        from camwidget.audits.view import AuditView

        return AuditView(self)

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        """The widget's bundle plus an ``image/png`` still (the class and cluster mean maps), which nbconvert,
        GitHub's viewer and the docs show where the widget cannot load."""
        import base64

        from camwidget.audits.report import overview_png

        bundle = self.widget()._repr_mimebundle_(**kwargs)
        if isinstance(bundle, dict):
            bundle["image/png"] = base64.b64encode(overview_png(self)).decode("ascii")
        return bundle

    def __repr__(self) -> str:
        flagged = sum(f.kind == "cluster" for f in self.flags())
        return (
            f"<Audit of {len(self.names)} pictures, {len(self.per_class)} classes, {flagged} flagged clusters "
            f"({self.settings['method']} at {self.settings['layer'] or 'the default layer'})>"
        )


def audit(
    model: Any,
    images: Any,
    labels: Sequence[int | str] | Mapping[str, int | str] | np.ndarray | None = None,
    masks: np.ndarray | Sequence[np.ndarray] | Mapping[str, np.ndarray] | str | os.PathLike | None = None,
    method: str = "gradcam",
    layer: str | None = None,
    *,
    class_names: Sequence[str] | None = None,
    target: Any = None,
    preprocess: Callable[[np.ndarray], np.ndarray] | str | None = None,
    side: int = 16,
    max_clusters: int = 8,
    seed: int = 0,
    concepts: int = 4,
    concept_pictures: int = 32,
    cluster_threshold: float = flagging.CLUSTER_THRESHOLD,
    picture_threshold: float = flagging.PICTURE_THRESHOLD,
    batch_size: int = 32,
    progress_bar: bool = True,
    store: Report | None = None,
    explain: Callable[..., Any] | None = None,
) -> Audit:
    """Audit where `model` looks across `images` (SpRAy, Lapuschkin et al. 2019).

    Every picture's map (``method`` at ``layer``, through :func:`camwidget.explain_many`) for its labelled
    class, or its top class without labels, is kept downsampled to ``side`` x ``side`` with mass 1. Per class:
    the mean map; spectral clusters of the maps (self-tuning affinity, eigengap, seeded k-means; see
    :mod:`camwidget.audits.clustering`) with each cluster's mean map, size, members and typical pictures. Per
    picture: its map's share in each region (centre, borders, corners), inside its mask, its cluster and its
    suspicion: the share of its map on pixels its class shares and other classes do not (a watermark, a frame,
    a background), or outside its object mask where one is given (see :mod:`camwidget.audits.regions`). A cluster
    whose mean suspicion is at least ``cluster_threshold`` is flagged with a reason naming the region.

    Args:
        model: a Keras model (never changed).
        images: as :func:`camwidget.explain_many` takes them: a folder, paths, arrays, a tf.data.Dataset.
        labels: None (each picture's top class), a sequence in the pictures' order, or a mapping from picture
            name to label; a label is a class index or a class name.
        masks: None; object masks as an (N, H, W) array, a sequence, a mapping from picture name, or a folder
            of mask pictures under the pictures' names (nonzero = object), each the picture's size.
        method, layer, preprocess, class_names, batch_size: as explain_many.
        target: as explain_many takes it: the maps explain this function of the output instead of a class
            (:mod:`camwidget.targets`); pictures are then grouped by `labels`, or all in one group "target".
        side: the common grid (4 to 64); max_clusters: the most clusters per class; seed: k-means and t-SNE.
        concepts: Deep Feature Factorization concepts across the data (:func:`camwidget.concepts`), 0 for none,
            over at most ``concept_pictures`` pictures spread over the input.
        cluster_threshold, picture_threshold: the suspicion from which a cluster, or a lone picture, is flagged.
        progress_bar: explain_many's bar.
        store: None, or an output folder's :class:`camwidget.pipeline.report.Report`: maps it holds are read
            back, not computed again, and each new one is kept in it (the command line's resume).
        explain: explain_many (None), or a function that takes its arguments and yields its results
            (:func:`camwidget.pipeline.on_ray.explain_on_ray` for ``--ray``).

    Returns:
        An :class:`Audit`; ``audit.flags()`` says what looks like a shortcut, ``audit.notes`` what was left out.

    Raises:
        ValueError: labels of the wrong length or not classes of the model, masks of the wrong number or size,
            a bad side or max_clusters, or no picture that could be read.
        TypeError, CAMError: a method or target that explain_many would refuse (the same message).
    """
    if isinstance(side, bool) or not isinstance(side, int) or not 4 <= side <= 64:
        raise ValueError(f"side (the audit's common grid) must be a whole number from 4 to 64, not {side!r}")
    if isinstance(max_clusters, bool) or not isinstance(max_clusters, int) or max_clusters < 1:
        raise ValueError(f"max_clusters must be a whole number of at least 1, not {max_clusters!r}")
    if isinstance(concepts, bool) or not isinstance(concepts, int) or concepts < 0:
        raise ValueError(f"concepts must be a whole number of at least 0 (0: none), not {concepts!r}")
    from camwidget.classes import resolve_class_names
    from camwidget.explain.request import Request

    Request.of(layer=layer, target=target, method=method)  # explain_many's request, checked before any picture
    given = isinstance(images, list) and bool(images) and all(isinstance(p, Picture) for p in images)
    pictures = images if given else find_pictures(images)
    if target is not None and labels is None:
        names = ["target"]  # every map explains the target: one group (explain_many's name for it)
    else:
        names = resolve_class_names(class_names, number_of_classes(model, pictures, layer, preprocess))
    classes = None if labels is None else label_classes(labels, pictures, names)
    find_mask = mask_finder(masks, pictures)
    settings = dict(
        method=method,
        layer=layer,
        side=side,
        seed=seed,
        max_clusters=max_clusters,
        cluster_threshold=cluster_threshold,
        picture_threshold=picture_threshold,
        preprocess=preprocess,
        labels=labels is not None,
        target=target,
    )
    found = collect(
        model,
        pictures,
        classes,
        find_mask,
        side,
        progress_bar,
        store,
        explain or explain_many,
        layer=layer,
        method=method,
        target=target,
        preprocess=preprocess,
        class_names=names,
        batch_size=batch_size,
    )
    if not found.pictures:
        raise ValueError(
            f"none of the {len(pictures)} pictures could be explained; first: {found.skipped[0][0]!r}: "
            f"{found.skipped[0][1]}"
        )
    result = Audit(model, found, names, settings)
    with one_thread():
        result.analyse()
        if concepts:
            _add_concepts(result, concepts, concept_pictures, layer, preprocess)
    return result


def _add_concepts(result: Audit, n: int, limit: int, layer: str | None, preprocess: Any) -> None:
    """Deep Feature Factorization over at most `limit` of the audit's pictures, spread evenly over them;
    each class's share of evidence per concept. A failure is a note, not the end of the audit."""
    from camwidget.dff import concepts
    from camwidget.explain import Explainer
    from camwidget.inputs import preprocess as preprocessing
    from camwidget.inputs.images import read_picture
    from camwidget.limits import MAX_SIDE

    total = len(result.names)
    rows = np.unique(np.linspace(0, total - 1, min(limit, total)).round().astype(int))
    expected = Explainer(result.model, layer=layer).expected_input_shape() or (None, None, 3)
    steps = preprocessing.resolve(result.model, preprocess)
    inputs = [
        preprocessing.model_input(read_picture(result.pictures[r].source).pixels, expected, MAX_SIDE, steps.fn)[0]
        for r in rows
    ]
    if len({x.shape for x in inputs}) > 1:
        result.notes.append("concepts left out: the pictures have different sizes and the model takes any size")
        return
    by_class = result.settings["target"] is None or result.settings["labels"]  # groups that are model classes
    classes = sorted(result.per_class) if by_class else None
    try:
        found = concepts(
            result.model, np.concatenate(inputs), n, layer, classes=classes, class_names=result.class_names
        )
    except ValueError as exc:
        result.notes.append(f"concepts left out: {exc}")
        return
    result.concepts, result.concept_rows = found, rows
    result.notes += [f"concepts: {note}" for note in found.notes]
    where = {int(r): i for i, r in enumerate(rows)}
    for c, entry in result.per_class.items() if by_class else ():
        members = [where[int(r)] for r in entry.members if int(r) in where]
        if members:
            entry.concept_share = found.class_share(members, c)
    if len(rows) < total:
        result.notes.append(f"concepts found over {len(rows)} of the {total} pictures, spread evenly over them")


__all__ = ["Audit", "ClassAudit", "Cluster", "audit"]
