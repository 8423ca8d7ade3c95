"""What a batch run writes into its output folder, each file whole or not at all (written, then renamed):

    overlays/<picture>.png   the overlay at the picture's size
    maps.npz                 every map, keyed by the picture's name
    results.csv, results.json  per picture: top classes with scores, the class explained, where the map lies
    gallery.html             one self-contained page: thumbnails sortable by confidence, class and statistics;
                             a click shows the overlay large (from overlays/, beside it)

Per-picture results are kept under .camwidget/ as they come, so that a run started again with the same folder
skips what is done; the tables, maps.npz and the gallery are made again from them at the end.
"""

from __future__ import annotations

import base64
import csv
import html
import io
import json
import os
import tempfile
from collections.abc import Iterable
from typing import Any

import cv2
import numpy as np

from .batch import Explained
from .errors import CAMError

THUMBNAIL = 160  # px, the longer side


def atomic_write(path: str, data: bytes) -> None:
    """Write `data` to `path` through a temporary file in the same folder and a rename: never half a file."""
    folder = os.path.dirname(path) or "."
    os.makedirs(folder, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=folder, prefix=".partial-")
    try:
        with os.fdopen(handle, "wb") as f:
            f.write(data)
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise


def check_output_folder(out: str) -> None:
    """Refuse a folder that cannot be written, before any work starts."""
    try:
        os.makedirs(out, exist_ok=True)
        probe = os.path.join(out, ".camwidget-write-test")
        with open(probe, "wb") as f:
            f.write(b"ok")
        os.unlink(probe)
    except OSError as exc:
        raise CAMError(f"cannot write to the output folder {out!r}: {exc.strerror or exc}") from None


class Report:
    """The output folder of one batch run."""

    def __init__(self, out: str) -> None:
        check_output_folder(out)
        self.out = out
        self.state = os.path.join(out, ".camwidget")
        self.errors: list[dict[str, Any]] = []  # pictures skipped in this run (not kept: a resumed run tries again)

    def claim(self, model: Any, settings: dict[str, Any]) -> None:
        """Mark the folder as this model's and these settings' results; refuse a folder that holds another
        model's or other settings' (a resumed run must never mix them)."""
        import hashlib

        digest = hashlib.sha1()
        for weight in model.weights:
            digest.update(np.ascontiguousarray(weight.numpy()).tobytes())
        identity = {"model": digest.hexdigest(), "settings": {k: repr(v) for k, v in sorted(settings.items())}}
        path = os.path.join(self.state, "run.json")
        if os.path.exists(path):
            with open(path, encoding="utf-8") as f:
                earlier = json.load(f)
            if earlier != identity:
                what = "another model (or other weights)" if earlier.get("model") != identity["model"] else "other settings"
                raise CAMError(
                    f"the output folder {self.out!r} holds results made with {what}; resuming would mix them. Use a "
                    "new --out, or delete the folder to start over"
                )
        else:
            atomic_write(path, json.dumps(identity).encode())

    def _key(self, name: str) -> str:
        return name.replace(os.sep, "/").replace("/", "__")

    def overlay_path(self, name: str) -> str:
        return os.path.join(self.out, "overlays", os.path.splitext(name)[0] + ".png")

    def done(self, name: str) -> bool:
        """This picture's results are written (a resumed run skips it)."""
        return os.path.exists(os.path.join(self.state, self._key(name) + ".json"))

    def add(self, item: Explained) -> None:
        """Keep one picture's results: its overlay, its map, then (last, marking it done) its record."""
        record: dict[str, Any] = {"file": item.name, "index": item.index}
        if item.error is not None:
            record["error"] = item.error
        else:
            if item.overlay is not None:
                ok, png = cv2.imencode(".png", cv2.cvtColor(item.overlay, cv2.COLOR_RGB2BGR))
                atomic_write(self.overlay_path(item.name), png.tobytes())
                record["overlay"] = os.path.relpath(self.overlay_path(item.name), self.out)
                record["thumbnail"] = _thumbnail_data_url(item.overlay)
            buffer = io.BytesIO()
            np.save(buffer, item.cam.astype(np.float32))
            atomic_write(os.path.join(self.state, self._key(item.name) + ".npy"), buffer.getvalue())
            record.update(
                class_index=item.class_index,
                top=[{"class": c, "name": n, "score": round(s, 6)} for c, n, s in item.top],
                **{k: round(v, 6) for k, v in item.stats.items()},
            )
        if item.error is None:  # a picture that failed is tried again by a resumed run
            atomic_write(os.path.join(self.state, self._key(item.name) + ".json"), json.dumps(record).encode())
        else:
            self.errors.append(record)

    def records(self) -> list[dict[str, Any]]:
        found = []
        if os.path.isdir(self.state):
            for entry in sorted(os.listdir(self.state)):
                if entry.endswith(".json") and entry != "run.json":
                    with open(os.path.join(self.state, entry), encoding="utf-8") as f:
                        found.append(json.load(f))
        return sorted(found + self.errors, key=lambda r: r["index"])

    def finish(self) -> list[dict[str, Any]]:
        """Write the tables, maps.npz and the gallery from every record kept; returns the records."""
        records = self.records()
        maps = {}
        for r in records:
            if "error" not in r:
                maps[r["file"]] = np.load(os.path.join(self.state, self._key(r["file"]) + ".npy"))
        buffer = io.BytesIO()
        np.savez_compressed(buffer, **maps)
        atomic_write(os.path.join(self.out, "maps.npz"), buffer.getvalue())
        table = [{k: v for k, v in r.items() if k != "thumbnail"} for r in records]
        atomic_write(os.path.join(self.out, "results.json"), json.dumps(table, indent=1).encode())
        atomic_write(os.path.join(self.out, "results.csv"), _csv(table).encode())
        atomic_write(os.path.join(self.out, "gallery.html"), gallery_html(records).encode())
        return records


def _thumbnail_data_url(rgb: np.ndarray) -> str:
    scale = THUMBNAIL / max(rgb.shape[:2])
    small = cv2.resize(rgb, (max(1, round(rgb.shape[1] * scale)), max(1, round(rgb.shape[0] * scale))),
                       interpolation=cv2.INTER_AREA) if scale < 1 else rgb  # fmt: skip
    ok, jpeg = cv2.imencode(".jpg", cv2.cvtColor(small, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 85])
    return "data:image/jpeg;base64," + base64.b64encode(jpeg.tobytes()).decode()


def _csv(table: Iterable[dict[str, Any]]) -> str:
    rows = []
    for r in table:
        top = r.get("top", [])
        row = {"file": r["file"], "error": r.get("error", "")}
        for k in range(3):
            row[f"class_{k + 1}"] = top[k]["name"] if k < len(top) else ""
            row[f"score_{k + 1}"] = top[k]["score"] if k < len(top) else ""
        for key in ("class_index", "peak_y", "peak_x", "centre_share", "mask_share"):
            row[key] = r.get(key, "")
        rows.append(row)
    buffer = io.StringIO()
    if rows:
        writer = csv.DictWriter(buffer, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return buffer.getvalue()


def gallery_html(records: list[dict[str, Any]], title: str = "camwidget gallery") -> str:
    """One page: a card per picture (thumbnail, top class and score, where the map lies), a sort menu, and a
    click that shows the overlay large (the overlay file beside the page)."""
    cards = []
    for r in records:
        if "error" in r:
            cards.append(f'<div class="card error" data-score="-1" data-class="" data-centre="-1">'
                         f'<div class="name">{html.escape(r["file"])}</div><div>skipped: {html.escape(r["error"])}</div></div>')  # fmt: skip
            continue
        top = r["top"][0] if r.get("top") else {"name": "", "score": 0}
        image = f'<img src="{r["thumbnail"]}" alt="">' if "thumbnail" in r else ""
        large = html.escape(r.get("overlay", ""))
        cards.append(
            f'<div class="card" data-score="{top["score"]}" data-class="{html.escape(top["name"])}" '
            f'data-centre="{r.get("centre_share", 0)}" data-peak="{r.get("peak_y", 0)}" data-large="{large}">'
            f'{image}<div class="name">{html.escape(r["file"])}</div>'
            f'<div>{html.escape(top["name"])} · {top["score"]:.2f}</div>'
            f'<div class="stats">centre {r.get("centre_share", 0):.0%} · peak ({r.get("peak_y", 0):.2f}, '
            f'{r.get("peak_x", 0):.2f})</div></div>'
        )
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>{html.escape(title)}</title><style>
body {{ font-family: sans-serif; margin: 16px; }}
#cards {{ display: flex; flex-wrap: wrap; gap: 10px; }}
.card {{ width: 170px; font-size: 12px; cursor: pointer; border: 1px solid #ddd; padding: 4px; }}
.card img {{ max-width: 160px; max-height: 160px; display: block; margin: auto; }}
.card.error {{ cursor: default; color: #a00; }}
.name {{ font-weight: bold; overflow-wrap: anywhere; }}
.stats {{ color: #555; }}
#large {{ display: none; position: fixed; inset: 0; background: rgba(0,0,0,.8); align-items: center;
          justify-content: center; }}
#large img {{ max-width: 95vw; max-height: 95vh; }}
</style></head><body>
<h3>{html.escape(title)}: {len(records)} pictures</h3>
<label>Sort by <select id="sort">
<option value="score-desc">confidence, high first</option><option value="score-asc">confidence, low first</option>
<option value="class">class</option><option value="centre-desc">share in the centre, high first</option>
<option value="centre-asc">share in the centre, low first</option></select></label>
<div id="cards">{"".join(cards)}</div>
<div id="large"><img alt=""></div>
<script>
const cards = document.getElementById("cards");
document.getElementById("sort").addEventListener("change", (e) => {{
  const [key, dir] = e.target.value.split("-");
  const items = [...cards.children];
  items.sort((a, b) => key === "class" ? a.dataset.class.localeCompare(b.dataset.class)
    : (dir === "asc" ? 1 : -1) * (parseFloat(a.dataset[key]) - parseFloat(b.dataset[key])));
  items.forEach((c) => cards.appendChild(c));
}});
const large = document.getElementById("large");
cards.addEventListener("click", (e) => {{
  const card = e.target.closest(".card");
  if (!card || !card.dataset.large) return;
  large.querySelector("img").src = card.dataset.large;
  large.style.display = "flex";
}});
large.addEventListener("click", () => {{ large.style.display = "none"; }});
</script></body></html>
"""
