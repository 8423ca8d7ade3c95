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
import io
import json
import os
import tempfile
import urllib.parse
import zipfile
from collections.abc import Iterable, Mapping
from typing import Any

import cv2
import numpy as np

from camwidget.errors import CAMError
from camwidget.pipeline.batch import Explained, Picture
from camwidget.pipeline.outputs import OutputFolder, csv_cell, html_text, output_names, state_key

THUMBNAIL = 160  # px, the longer side
STATE = ".camwidget"  # per-picture results kept as they come, and the run's mark (run.json)
OVERLAYS = "overlays"
FORMAT = 2  # of the state files: 2 keys them by the picture's identity
EXTRA = ".extra.npz"  # a picture's arrays kept beside its map by another command (see Report.add)


def _stamp(key: str) -> list[int] | None:
    """A picture file's [size, modification time in ns] (its key is "file:" and its real path), None for an
    array or a file that is gone: what tells a resumed run that the file changed since its map was made."""
    if not key.startswith("file:"):
        return None
    try:
        stat = os.stat(key[len("file:") :])
    except OSError:
        return None
    return [stat.st_size, stat.st_mtime_ns]


def file_mode() -> int:
    """The mode a new file gets under the process's umask (0644 under the usual 022)."""
    global _FILE_MODE
    if _FILE_MODE is None:
        mask = os.umask(0o022)
        os.umask(mask)
        _FILE_MODE = 0o666 & ~mask
    return _FILE_MODE


_FILE_MODE: int | None = None


def atomic_write(path: str, data: bytes) -> None:
    """Write `data` to `path` through a temporary file in the same folder and a rename: never half a file.
    The file gets the mode a plain ``open(path, "w")`` would (the umask's), not mkstemp's 0600."""
    folder = os.path.dirname(path) or "."
    os.makedirs(folder, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=folder, prefix=".partial-")
    try:
        with os.fdopen(handle, "wb") as f:
            f.write(data)
        os.chmod(temporary, file_mode())
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise


def check_output_folder(out: str) -> None:
    """Refuse a folder that cannot be made or written, before any work starts, without making it (a run
    refused later leaves no trace)."""
    existing = os.path.abspath(out)
    while not os.path.exists(existing):
        existing = os.path.dirname(existing)
    problem = None
    if existing != os.path.abspath(out) and not os.path.isdir(existing):
        problem = f"{existing!r} is a file"
    elif not os.path.isdir(existing):
        problem = "it is a file"
    elif not os.access(existing, os.W_OK | os.X_OK):
        problem = f"{existing!r} is not writable"
    if problem:
        raise CAMError(f"cannot write to the output folder {out!r}: {problem}")


class Report:
    """The output folder of one batch run: every path in it comes from :class:`camwidget.pipeline.outputs.OutputFolder`
    (inside the folder, never an input) and every picture's files from its own output name
    (:func:`camwidget.pipeline.outputs.output_names`: never another picture's).

    Args:
        out: the output folder (made at the first file written).
        inputs: the input paths (files and folders as given, and the pictures found): never written.
    """

    def __init__(self, out: str, inputs: Iterable[str] = ()) -> None:
        check_output_folder(out)
        self.out = out
        self.folder = OutputFolder.of(out, inputs)
        self.errors: list[dict[str, Any]] = []  # pictures skipped in this run (not kept: a resumed run tries again)
        self._identity: dict[str, Any] | None = None  # written with the first result (see claim)
        self._kept = self._records_on_disk()  # identity -> record, from earlier runs into this folder
        self._names = {r["key"]: r["output"] for r in self._kept.values()}

    def _state(self, *parts: str) -> str:
        return self.folder.path(STATE, *parts)

    def _records_on_disk(self) -> dict[str, dict[str, Any]]:
        folder = os.path.join(self.out, STATE)
        found: dict[str, dict[str, Any]] = {}
        if os.path.isdir(folder) and self.folder.contains(folder):
            for entry in sorted(os.listdir(folder)):
                if entry.endswith(".json") and entry != "run.json":
                    with open(self._state(entry), encoding="utf-8") as f:
                        record = json.load(f)
                    if "key" in record:
                        found[record["key"]] = record
        return found

    def claim(self, model: Any, settings: dict[str, Any]) -> None:
        """Mark the folder as this model's and these settings' results; refuse a folder that holds another
        model's or other settings' (a resumed run must never mix them). The mark is written with the first
        picture's results, so a run refused before any (a typo in a setting) leaves the folder as it was."""
        import hashlib

        digest = hashlib.sha1()
        for weight in model.weights:
            digest.update(np.ascontiguousarray(weight.numpy()).tobytes())
        identity = {
            "format": FORMAT,
            "model": digest.hexdigest(),
            "settings": {k: repr(v) for k, v in sorted(settings.items())},
        }
        path = os.path.join(self.out, STATE, "run.json")
        if os.path.exists(path):
            with open(self._state("run.json"), encoding="utf-8") as f:
                earlier = json.load(f)
            if earlier != identity:
                what = (
                    "an older camwidget"
                    if earlier.get("format") != FORMAT
                    else "another model (or other weights)"
                    if earlier.get("model") != identity["model"]
                    else "other settings"
                )
                raise CAMError(
                    f"the output folder {self.out!r} holds results made with {what}; resuming would mix them. Use a "
                    "new --out, or delete the folder to start over"
                )
        else:
            self._identity = identity

    def assign(self, pictures: Iterable[Picture]) -> None:
        """Give each picture its output name, once: the name an earlier run gave it, else its readable name
        where free (see :func:`camwidget.pipeline.outputs.output_names`), never an input's path."""
        self._names.update(
            output_names(
                [(p.key, p.name) for p in pictures],
                taken={name: key for key, name in self._names.items()},
                is_taken=lambda name: self.folder.is_input(OVERLAYS, *_overlay_parts(name)),
            )
        )

    def name(self, key: str) -> str:
        if key not in self._names:
            raise CAMError(f"picture {key!r} was not given to Report.assign")
        return self._names[key]

    def done(self, picture: Picture) -> bool:
        """This picture's results are written, from the file as it is now (a resumed run skips it). A file
        changed since (another size or modification time) is not done: its kept map would be stale."""
        record = self._kept.get(picture.key)
        return record is not None and record.get("stamp") == _stamp(picture.key)

    def add(self, item: Explained, extra: Mapping[str, np.ndarray] | None = None) -> None:
        """Keep one picture's results: its overlay, its map, `extra` (arrays another command keeps of the
        picture: the audit's small copy of it), then (last, marking it done) its record."""
        name = self.name(item.key)
        record: dict[str, Any] = {"file": item.name, "index": item.index, "key": item.key, "output": name}
        record["stamp"] = _stamp(item.key)
        if item.error is not None:
            record["error"] = item.error
            self.errors.append(record)
            return
        if self._identity is not None:  # the first result: the folder becomes this run's
            atomic_write(self._state("run.json"), json.dumps(self._identity).encode())
            self._identity = None
        if item.overlay is not None:
            ok, png = cv2.imencode(".png", cv2.cvtColor(item.overlay, cv2.COLOR_RGB2BGR))
            atomic_write(self.folder.path(OVERLAYS, *_overlay_parts(name)), png.tobytes())
            record["overlay"] = "/".join([OVERLAYS, *_overlay_parts(name)])
            record["thumbnail"] = _thumbnail_data_url(item.overlay)
        buffer = io.BytesIO()
        np.save(buffer, item.cam.astype(np.float32))
        atomic_write(self._state(state_key(item.key) + ".npy"), buffer.getvalue())
        if extra:
            atomic_write(self._state(state_key(item.key) + EXTRA), npz_bytes(dict(extra)))
            record["extra"] = sorted(extra)
        record.update(
            class_index=item.class_index,
            top=[{"class": c, "name": n, "score": round(s, 6)} for c, n, s in item.top],
            **{k: round(v, 6) for k, v in item.stats.items()},
        )
        atomic_write(self._state(state_key(item.key) + ".json"), json.dumps(record).encode())
        self._kept[item.key] = record

    def kept(self, picture: Picture) -> tuple[dict[str, Any], np.ndarray, dict[str, np.ndarray]]:
        """A done picture's record, map and `extra` arrays (see :meth:`add`), as an earlier run kept them.

        Args:
            picture: a picture :meth:`done` says is done.

        Returns:
            (its record, its map (h, w) float32, its extra arrays by name; empty if none were kept).
        """
        record = self._kept[picture.key]
        cam = np.load(self._state(state_key(picture.key) + ".npy"))
        extra: dict[str, np.ndarray] = {}
        if record.get("extra"):
            with np.load(self._state(state_key(picture.key) + EXTRA)) as archive:
                extra = {name: archive[name] for name in archive.files}
        return record, cam, extra

    def records(self) -> list[dict[str, Any]]:
        return sorted(list(self._kept.values()) + self.errors, key=lambda r: r["index"])

    def finish(self, details: Iterable[tuple[str, Any]] = ()) -> list[dict[str, Any]]:
        """Write the tables, maps.npz and the gallery from every record kept; returns the records.
        `details`: what the gallery page says it shows (see :func:`gallery_html`)."""
        records = self.records()
        if not os.path.isdir(self.out) and not records:
            return records
        maps = {r["output"]: np.load(self._state(state_key(r["key"]) + ".npy")) for r in records if "error" not in r}
        atomic_write(self.folder.path("maps.npz"), npz_bytes(maps))
        table = [_row(r) for r in records]
        atomic_write(self.folder.path("results.json"), json.dumps(table, indent=1, ensure_ascii=False).encode())
        atomic_write(self.folder.path("results.csv"), _csv(table).encode())
        atomic_write(self.folder.path("gallery.html"), gallery_html(records, details=details).encode())
        return records


def _row(record: dict[str, Any]) -> dict[str, Any]:
    """A record as results.json shows it: the file's exact resolved path instead of the internal key."""
    row = {k: v for k, v in record.items() if k not in ("thumbnail", "key")}
    if record["key"].startswith("file:"):
        row["path"] = record["key"][len("file:") :]
    return row


def _overlay_parts(name: str) -> list[str]:
    *folders, last = name.split("/")
    return [*folders, last + ".png"]


def npz_bytes(maps: dict[str, np.ndarray]) -> bytes:
    """An .npz archive of `maps` (name -> array), written member by member: any name works, including those
    that are keywords of ``np.savez`` (``file``, ``allow_pickle``) and names with slashes."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, array in maps.items():
            with archive.open(name + ".npy", "w", force_zip64=True) as member:
                np.lib.format.write_array(member, np.asanyarray(array), allow_pickle=False)
    return buffer.getvalue()


def _thumbnail_data_url(rgb: np.ndarray) -> str:
    scale = THUMBNAIL / max(rgb.shape[:2])
    small = (
        cv2.resize(
            rgb,
            (max(1, round(rgb.shape[1] * scale)), max(1, round(rgb.shape[0] * scale))),
            interpolation=cv2.INTER_AREA,
        )
        if scale < 1
        else rgb
    )
    ok, jpeg = cv2.imencode(".jpg", cv2.cvtColor(small, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 85])
    return "data:image/jpeg;base64," + base64.b64encode(jpeg.tobytes()).decode()


def _csv(table: Iterable[dict[str, Any]]) -> str:
    """results.csv: a row per picture; every text cell through :func:`camwidget.pipeline.outputs.csv_cell`."""
    rows = []
    for r in table:
        top = r.get("top", [])
        row = {"file": r["file"], "output": r.get("output", ""), "error": r.get("error", "")}
        for k in range(3):
            row[f"class_{k + 1}"] = top[k]["name"] if k < len(top) else ""
            row[f"score_{k + 1}"] = top[k]["score"] if k < len(top) else ""
        for key in ("class_index", "peak_y", "peak_x", "centre_share", "mask_share"):
            row[key] = r.get(key, "")
        rows.append({k: csv_cell(v) for k, v in row.items()})
    buffer = io.StringIO()
    if rows:
        writer = csv.DictWriter(buffer, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return buffer.getvalue()


def _score_first(record: dict[str, Any]) -> tuple[int, float]:
    """The page's first order, the Sort menu's first entry: confidence, high first; skipped pictures last."""
    if "error" in record or not record.get("top"):
        return (1, 0.0)
    return (0, -float(record["top"][0]["score"]))


def gallery_html(
    records: list[dict[str, Any]], title: str = "camwidget gallery", details: Iterable[tuple[str, Any]] = ()
) -> str:
    """One page: a card per picture (thumbnail, top class and score, where the map lies), a sort menu, and a
    click that shows the overlay large (the overlay file beside the page).

    Every string that comes from data (file names, class names, errors, `details`) goes through
    :func:`camwidget.pipeline.outputs.html_text`; the overlay's link is also URL-quoted, so a name with ``#`` or ``?``
    still finds its file. `details`: (label, value) pairs said under the title (the model, the method...)."""
    cards = []
    for r in sorted(records, key=_score_first):
        name = html_text(r["file"])
        if "error" in r:
            cards.append(
                f'<div class="card error" data-score="-1" data-class="" data-centre="-1">'
                f'<div class="name">{name}</div><div>skipped: {html_text(r["error"])}</div></div>'
            )
            continue
        top = r["top"][0] if r.get("top") else {"name": "", "score": 0}
        image = f'<img src="{html_text(r["thumbnail"])}" alt="">' if "thumbnail" in r else ""
        large = html_text(urllib.parse.quote(r.get("overlay", "")))
        cards.append(
            f'<div class="card" data-score="{float(top["score"])}" data-class="{html_text(top["name"])}" '
            f'data-centre="{float(r.get("centre_share", 0))}" data-peak="{float(r.get("peak_y", 0))}" '
            f'data-large="{large}">{image}<div class="name">{name}</div>'
            f"<div>{html_text(top['name'])} · {float(top['score']):.2f}</div>"
            f'<div class="stats">centre {float(r.get("centre_share", 0)):.0%} · peak '
            f"({float(r.get('peak_y', 0)):.2f}, {float(r.get('peak_x', 0)):.2f})</div></div>"
        )
    about = "".join(f"<li><b>{html_text(label)}</b>: {html_text(value)}</li>" for label, value in details)
    about = f'<ul class="about">{about}</ul>' if about else ""
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>{html_text(title)}</title><style>
body {{ font-family: sans-serif; margin: 16px; }}
#cards {{ display: flex; flex-wrap: wrap; gap: 10px; }}
.card {{ width: 170px; font-size: 12px; cursor: pointer; border: 1px solid #ddd; padding: 4px; }}
.card img {{ max-width: 160px; max-height: 160px; display: block; margin: auto; }}
.card.error {{ cursor: default; color: #a00; }}
.name {{ font-weight: bold; overflow-wrap: anywhere; }}
.stats {{ color: #555; }}
.about {{ color: #444; font-size: 13px; padding-left: 18px; }}
#large {{ display: none; position: fixed; inset: 0; background: rgba(0,0,0,.8); align-items: center;
          justify-content: center; }}
#large img {{ max-width: 95vw; max-height: 95vh; }}
</style></head><body>
<h3>{html_text(title)}: {len(records)} pictures</h3>{about}
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
