"""Which clusters and pictures look like shortcuts, and the reason in words.

A picture's suspicion (0..1) is the share of its map's mass that lies on pixels its class shares (a watermark,
a frame, a background colour: :func:`camwidget.audits.regions.on_shared`) or, when an object mask is given,
outside the mask (1 - the energy pointing game). A cluster is flagged when its pictures' mean suspicion is at
least `cluster_threshold`; a picture outside a flagged cluster when its own is at least `picture_threshold`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

CLUSTER_THRESHOLD = 0.35
PICTURE_THRESHOLD = 0.5


@dataclass(frozen=True)
class Flag:
    """One thing that looks like a shortcut."""

    kind: str  # "cluster" or "picture"
    class_index: int
    class_name: str
    clusters: tuple[int, ...]  # the clusters' numbers within their class (a picture's own; -1: none)
    pictures: tuple[int, ...] = field(default_factory=tuple)  # rows of the audit's picture table
    names: tuple[str, ...] = field(default_factory=tuple)  # those pictures' names
    suspicion: float = 0.0  # the mean suspicion of those pictures
    region: str = ""  # where, in words
    reason: str = ""  # the whole sentence

    def as_dict(self) -> dict:
        return {
            "kind": self.kind,
            "class_index": self.class_index,
            "class_name": self.class_name,
            "clusters": list(self.clusters),
            "pictures": list(self.names),
            "suspicion": round(self.suspicion, 4),
            "region": self.region,
            "reason": self.reason,
        }


def hint(region: str, outside_mask: bool) -> str:
    """What a shortcut in `region` usually is."""
    if outside_mask:
        return "the context rather than the object?"
    if "corner" in region:
        return "a watermark or a logo?"
    if "background" in region:
        return "the background?"
    if "border" in region:
        return "a frame or a border?"
    return "a mark the class carries?"


def cluster_reason(
    size: int,
    class_size: int,
    class_name: str,
    clusters: tuple[int, ...],
    share: float,
    region: str,
    outside_mask: bool,
    others: bool,
) -> str:
    """The sentence for flagged clusters of one class with one region (their numbers left out when the class
    has no other cluster)."""
    numbers = ", ".join(str(c) for c in clusters)
    who = f"{size} of {class_size} {class_name!r} pictures" + (
        f" (cluster{'s' * (len(clusters) > 1)} {numbers})" if clusters else ""
    )
    if outside_mask:
        return (
            f"{who} put {share:.0%} of the map outside the object's mask, most of it in {region}: {hint(region, True)}"
        )
    alike = "nearly identical across the class" + (" and unlike the other classes'" if others else "")
    return f"{who} put {share:.0%} of the map on {region}, where their pixels are {alike}: {hint(region, False)}"


def picture_reason(name: str, class_name: str, share: float, region: str, outside_mask: bool) -> str:
    """The sentence for a flagged picture."""
    if outside_mask:
        return (
            f"{name!r} ({class_name!r}) puts {share:.0%} of its map outside the object's mask, most of it in {region}"
        )
    return (
        f"{name!r} ({class_name!r}) puts {share:.0%} of its map on {region}, where almost every {class_name!r} "
        "picture shows the same pixels"
    )


def order(flags: list[Flag]) -> list[Flag]:
    """Clusters first, the most pictures and the most suspicion first."""
    return sorted(flags, key=lambda f: (f.kind != "cluster", -len(f.pictures), -f.suspicion))


def strongest(values: np.ndarray, count: int) -> np.ndarray:
    """The indices of the `count` largest values, largest first (ties in index order)."""
    return np.argsort(-np.asarray(values), kind="stable")[:count]
