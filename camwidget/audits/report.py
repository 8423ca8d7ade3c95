"""What ``camwidget audit`` writes into its output folder, each file whole (written, then renamed), every path
through :class:`camwidget.pipeline.outputs.OutputFolder` and every string through ``html_text`` / ``csv_cell``:

    audit.html     one self-contained page: flags, notes, per class the mean map, the clusters (mean map, size,
                   suspicion, typical pictures with their maps) and a t-SNE plot of the maps; the concepts
    clusters.csv   one row a cluster: class, number, size, suspicion, flagged, region, typical pictures
    pictures.csv   one row a picture: class, top class, cluster, suspicion, region shares, share in its mask
    flags.json     the flags: kind, class, cluster, pictures, suspicion, region, reason
"""

from __future__ import annotations

import base64
import csv
import io
import json
from collections.abc import Iterable
from typing import Any

import numpy as np

from camwidget import render
from camwidget.pipeline.outputs import OutputFolder, csv_cell, html_text
from camwidget.pipeline.report import atomic_write

FILES = ("audit.html", "clusters.csv", "pictures.csv", "flags.json")
TILE = 96  # px, a map or thumbnail on the page


def write(audit: Any, out: str, inputs: Iterable[str] = ()) -> list[str]:
    """Write the audit's four files under `out` (never outside it, never over an input); returns their paths."""
    folder = OutputFolder.of(out, inputs)
    contents = {
        "audit.html": page(audit).encode("utf-8"),
        "clusters.csv": table_csv(cluster_rows(audit)).encode("utf-8"),
        "pictures.csv": table_csv(audit.table()).encode("utf-8"),
        "flags.json": json.dumps([f.as_dict() for f in audit.flags()], indent=1, ensure_ascii=False).encode("utf-8"),
    }
    paths = []
    for name, data in contents.items():
        path = folder.path(name)
        atomic_write(path, data)
        paths.append(path)
    return paths


def cluster_rows(audit: Any) -> list[dict[str, Any]]:
    """One row a cluster (see the module's docstring)."""
    rows = []
    for entry in audit.per_class.values():
        for cluster in entry.clusters:
            rows.append(
                {
                    "class_index": entry.class_index,
                    "class_name": entry.name,
                    "cluster": cluster.number,
                    "size": cluster.size,
                    "class_size": len(entry.members),
                    "suspicion": round(cluster.suspicion, 4),
                    "flagged": cluster.flagged,
                    "region": cluster.region,
                    "typical": ";".join(audit.names[r] for r in cluster.typical),
                }
            )
    return rows


def table_csv(rows: list[dict[str, Any]]) -> str:
    """CSV text, every cell through csv_cell (no spreadsheet formulas from names)."""
    buffer = io.StringIO()
    if rows:
        writer = csv.DictWriter(buffer, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: csv_cell(v) for k, v in row.items()})
    return buffer.getvalue()


def png_url(rgb: np.ndarray) -> str:
    return "data:image/png;base64," + base64.b64encode(render.png_bytes(rgb)).decode("ascii")


def map_tile(masses: np.ndarray, size: int = TILE) -> np.ndarray:
    """A map (side x side, any scale) as a colour tile: divided by its max, jet, size x size (cells kept sharp)."""
    import cv2

    peak = float(masses.max())
    scaled = masses / peak if peak > 0 else masses
    return cv2.resize(render.colorize(scaled.astype(np.float32), "jet"), (size, size), interpolation=cv2.INTER_NEAREST)


def thumbnail(audit: Any, row: int, size: int = TILE) -> np.ndarray:
    """A picture of the audit (read again) with its kept map over it, size pixels on its longer side; a grey
    tile with the map alone if it cannot be read again."""
    import cv2

    from camwidget.inputs.images import read_picture

    try:
        pixels = read_picture(audit.pictures[row].source).pixels
    except Exception:  # noqa: BLE001 - the page still shows the map
        return map_tile(audit.masses[row], size)
    scale = size / max(pixels.shape[:2])
    small = cv2.resize(pixels, (max(1, round(pixels.shape[1] * scale)), max(1, round(pixels.shape[0] * scale))))
    peak = float(audit.masses[row].max())
    return render.overlay(small, audit.masses[row] / peak if peak > 0 else audit.masses[row], 0.5, "jet")


def embedding_png(audit: Any, class_index: int) -> bytes:
    """The class's maps in 2-D (t-SNE), coloured by cluster, as PNG (matplotlib's object API, no pyplot)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    rows, points = audit.embedding(class_index)
    figure = Figure(figsize=(3.2, 3.0), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    clusters = audit.cluster[rows]
    for number in sorted(set(clusters.tolist())):
        chosen = clusters == number
        label = "not clustered" if number < 0 else f"cluster {number}"
        axes.scatter(points[chosen, 0], points[chosen, 1], s=8, label=label)
    total = int((audit.classes == class_index).sum())
    axes.set_title(f"t-SNE of {len(rows)} of {total} maps", fontsize=9)
    axes.set_xticks([])
    axes.set_yticks([])
    axes.legend(fontsize=7, loc="best")
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def overview_png(audit: Any) -> bytes:
    """A still of the audit (PNG): a row a class, its mean map then each cluster's, titled with the size and
    the suspicion, flagged clusters marked; what a notebook viewer without the widget shows."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    entries = list(audit.per_class.values())
    columns = 1 + max((len(e.clusters) for e in entries), default=0)
    figure = Figure(figsize=(1.6 * columns, 1.9 * max(1, len(entries))), dpi=90)
    FigureCanvasAgg(figure)
    for r, entry in enumerate(entries):
        tiles = [(f"{entry.name}: mean of {len(entry.members)}", entry.mean_map, False)]
        tiles += [
            (f"cluster {c.number}: {c.size}, {c.suspicion:.0%}{' FLAG' if c.flagged else ''}", c.mean_map, c.flagged)
            for c in entry.clusters
        ]
        for k, (title, mean_map, flagged) in enumerate(tiles):
            axes = figure.add_subplot(len(entries), columns, r * columns + k + 1)
            axes.imshow(map_tile(mean_map, 64))
            axes.set_title(title, fontsize=7, color="#c00" if flagged else "black")
            axes.set_xticks([])
            axes.set_yticks([])
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def page(audit: Any) -> str:
    """The self-contained HTML page (every string escaped by html_text, pictures inline as data URLs)."""
    e = html_text
    settings = audit.settings
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>camwidget audit</title><style>"
        "body{font-family:sans-serif;margin:1.5em;max-width:1200px}.strip{display:flex;flex-wrap:wrap;gap:12px}"
        ".card{border:1px solid #ccc;padding:6px;border-radius:4px}.flagged{border:2px solid #c00}"
        "img{image-rendering:pixelated}.flag{color:#900}small{color:#555}</style></head><body>",
        "<h1>Where the model looks across the data</h1>",
        f"<p>{e(len(audit.names))} pictures, {e(len(audit.per_class))} classes; maps by {e(settings['method'])} at "
        f"{e(settings['layer'] or 'the default layer')}, for each picture's "
        f"{'labelled class' if settings['labels'] else 'top class'}; clustered per class (SpRAy).</p>",
    ]
    found = audit.flags()
    parts.append("<h2>Flags</h2>")
    if found:
        parts.append("<ul>" + "".join(f"<li class='flag'>{e(f.reason)}</li>" for f in found) + "</ul>")
    else:
        parts.append("<p>Nothing looks like a shortcut by this audit's measures.</p>")
    if audit.notes:
        parts.append("<h2>Notes</h2><ul>" + "".join(f"<li>{e(n)}</li>" for n in audit.notes) + "</ul>")
    for entry in audit.per_class.values():
        parts.append(f"<h2>Class {e(entry.name)} ({e(len(entry.members))} pictures)</h2>")
        parts.append(
            f"<div class='strip'><div class='card'><img src='{png_url(map_tile(entry.mean_map))}' "
            f"alt='mean map'><br><small>mean map</small></div>"
        )
        if entry.clusters:
            parts.append(
                f"<div class='card'><img src='data:image/png;base64,"
                f"{base64.b64encode(embedding_png(audit, entry.class_index)).decode('ascii')}' alt='t-SNE'></div>"
            )
        parts.append("</div>")
        if entry.note:
            parts.append(f"<p>{e(entry.note)}</p>")
        parts.append("<div class='strip'>")
        for cluster in entry.clusters:
            thumbs = "".join(
                f"<img src='{png_url(thumbnail(audit, r))}' title='{e(audit.names[r])}' alt='{e(audit.names[r])}'>"
                for r in cluster.typical
            )
            parts.append(
                f"<div class='card{' flagged' if cluster.flagged else ''}'><b>cluster {e(cluster.number)}</b>: "
                f"{e(cluster.size)} pictures, suspicion {cluster.suspicion:.0%}{' (flagged)' if cluster.flagged else ''}"
                f"<br><img src='{png_url(map_tile(cluster.mean_map))}' alt='cluster mean map'> {thumbs}"
                f"<br><small>suspect mass in {e(cluster.region)}; typical pictures (nearest the mean map)</small></div>"
            )
        parts.append("</div>")
    if audit.concepts is not None:
        found_concepts = audit.concepts
        parts.append(
            f"<h2>Concepts (Deep Feature Factorization at {e(found_concepts.layer)}, "
            f"over {e(len(audit.concept_rows))} pictures)</h2><table border='1' cellpadding='4'><tr><th>concept</th>"
            "<th>raises most</th>"
            + "".join(f"<th>share of {e(x.name)}</th>" for x in audit.per_class.values())
            + "</tr>"
        )
        for j in range(found_concepts.n):
            top = ", ".join(f"{name} ({value:.2g})" for _, name, value in found_concepts.top_classes[j]) or "none"
            shares = "".join(
                f"<td>{'' if x.concept_share is None else f'{x.concept_share[j]:.0%}'}</td>"
                for x in audit.per_class.values()
            )
            parts.append(f"<tr><td>{j}</td><td>{e(top)}</td>{shares}</tr>")
        parts.append("</table>")
    parts.append("</body></html>")
    return "".join(parts)
