"""``camwidget audit MODEL IMAGES... --out DIR [--labels labels.csv] [--masks DIR]``: the audit from the
command line (see :mod:`camwidget.audits.report` for what it writes). Each picture's map is kept under --out as
it comes, as ``camwidget explain`` keeps its results (:class:`camwidget.pipeline.report.Report`): a run stopped,
or started again, reuses the maps already made and computes only the rest; the clusters, flags and report are
made again from all of them (clustering needs every map at once). ``--ray`` computes the maps on a Ray cluster
(:mod:`camwidget.pipeline.on_ray`), as ``camwidget explain --ray`` does."""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import sys
import time
from typing import Any

DESCRIPTION = """\
Audit where a model looks across many pictures (SpRAy: spectral clusters of the maps per class) and flag
what looks like a shortcut (a watermark, a frame, a background). Writes, into --out:
  audit.html      flags, clusters with their mean maps and typical pictures, a t-SNE plot, concepts
  clusters.csv    one row a cluster
  pictures.csv    one row a picture (cluster, suspicion, where its map lies)
  flags.json      what looks like a shortcut, and why
Run it again with the same --out to finish an interrupted run: the maps already made are reused."""

EXAMPLES = """\
examples:
  camwidget audit model.keras photos/ --out audit/
  camwidget audit model.keras photos/ --out audit/ --labels labels.csv --masks masks/
  camwidget audit model.keras photos/ --out audit/ --ray auto      (a running Ray cluster)
labels.csv: picture,label per line (the picture's path relative to the folder given; label a class index or name)
exit codes: 0 audited; 1 some pictures could not be read (listed); 2 bad usage; 130 interrupted (run it again)"""


def add_parser(commands: Any) -> None:
    """The audit subcommand on the main parser's subcommands."""
    from camwidget.pipeline.cli import positive_int

    audit = commands.add_parser(
        "audit",
        help="audit where the model looks across many pictures; flag shortcuts",
        description=DESCRIPTION,
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    audit.add_argument("model", metavar="MODEL", help="a .keras (or .h5) file, or module:function returning a model")
    audit.add_argument("images", metavar="IMAGES", nargs="+", help="picture files or folders (searched recursively)")
    audit.add_argument("--out", required=True, metavar="DIR", help="the output folder (made if missing)")
    audit.add_argument("--labels", metavar="CSV", help="picture,label rows (default: each picture's top class)")
    audit.add_argument("--masks", metavar="DIR", help="object masks under the pictures' names (nonzero = object)")
    audit.add_argument("--layer", help="the layer (default: the last spatial feature layer)")
    audit.add_argument("--method", default="gradcam", help="the CAM method (default gradcam)")
    audit.add_argument("--class-names", metavar="FILE", help="a text file with one class name per line")
    audit.add_argument("--concepts", type=int, default=4, metavar="N", help="DFF concepts, 0 for none (default 4)")
    audit.add_argument("--batch-size", type=positive_int, default=32, metavar="N", help="pictures per pass")
    audit.add_argument(
        "--target",
        metavar="SPEC",
        help="explain this instead of a class: unit:I or module:function returning a target (see camwidget.targets)",
    )
    audit.add_argument("--ray", metavar="ADDRESS", help="compute the maps on a Ray cluster: its address, or auto")


def read_labels(path: str) -> dict[str, str]:
    """labels.csv -> picture name -> label; a first row 'picture,label' (any header words) is skipped."""
    from camwidget.pipeline.model_file import UsageError

    try:
        with open(path, encoding="utf-8", newline="") as f:
            rows = [row for row in csv.reader(f) if row and any(cell.strip() for cell in row)]
    except OSError as exc:
        raise UsageError(f"--labels {path!r}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise UsageError(f"--labels {path!r}: not a UTF-8 CSV file (picture,label per line)") from None
    bad = [i + 1 for i, row in enumerate(rows) if len(row) < 2]
    if bad:
        raise UsageError(f"--labels {path!r}: line {bad[0]} has no label; each line is picture,label")
    if rows and rows[0][0].strip().lower() in ("picture", "file", "name", "image", "path"):
        rows = rows[1:]
    return {row[0].strip(): row[1].strip() for row in rows}


def run(args: argparse.Namespace) -> int:
    """The audit command: settings checked before anything is written; files only under --out. The maps are
    kept under --out as they come (:class:`camwidget.pipeline.report.Report`, as ``camwidget explain`` keeps
    its results), so that a run stopped by Ctrl-C, or run again, reuses them."""
    from camwidget.quiet import quiet_tensorflow

    quiet_tensorflow()
    from camwidget.audits.analysis import audit
    from camwidget.audits.report import write
    from camwidget.pipeline.cli import explainer_of, map_options, say_interrupted, start_run
    from camwidget.pipeline.model_file import UsageError

    labels = read_labels(args.labels) if args.labels else None
    started = start_run(args, [args.masks] if args.masks else [])
    report = started.report
    settings = {k: v for k, v in vars(args).items() if k in ("layer", "method", "target", "class_names")}
    settings["labels"] = hashlib.sha1(json.dumps(sorted((labels or {}).items())).encode()).hexdigest()
    report.claim(started.model, settings)  # another model's or other settings' maps are never reused
    kept = sum(report.done(p) for p in started.pictures)
    if kept:  # said before the work, so that a long run says at once what it will not do again
        print(
            f"resuming: the maps of {kept} of {len(started.pictures)} pictures are kept in {args.out} and reused; "
            f"computing the other {len(started.pictures) - kept}",
            file=sys.stderr,
        )
    start = time.perf_counter()
    try:
        found = audit(
            started.model,
            started.pictures,
            labels=labels,
            masks=args.masks,
            concepts=args.concepts,
            progress_bar=sys.stderr.isatty(),
            store=report,
            explain=explainer_of(args),
            **map_options(args, started),
        )
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    except KeyboardInterrupt:  # each map is kept as it comes (Report.add): nothing more to write
        return say_interrupted(started)
    write(found, args.out, report.folder.inputs)
    flags = found.flags()
    computed = len(found.names) - found.reused
    print(
        f"{len(found.names)} pictures audited in {time.perf_counter() - start:.1f} s ({computed} maps computed, "
        f"{found.reused} reused from an earlier run into {args.out}); {len(flags)} flags; "
        f"{args.out}: audit.html, clusters.csv, pictures.csv, flags.json"
    )
    for flag in flags:
        print(f"flag: {flag.reason}")
    for name, why in found.skipped:
        print(f"skipped {name!r}: {why}", file=sys.stderr)
    return 1 if found.skipped else 0
