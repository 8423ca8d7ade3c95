"""The command line: ``camwidget explain MODEL IMAGES... --out DIR``.

Writes overlays, maps, a table and an HTML gallery (see :mod:`camwidget.report`); a run started again with the
same ``--out`` skips the pictures already done. ``--ray ADDRESS`` spreads the batches over a Ray cluster.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import time
from typing import Any

DESCRIPTION = """\
Explain many pictures with Grad-CAM (or another CAM method) and write, into --out:
  overlays/<picture>.png   each picture with its map over it
  maps.npz                 every map, keyed by the picture's file name
  results.csv / .json      top classes with scores, the class explained, where the map lies
  gallery.html             thumbnails to sort by confidence, class or statistics; click for the overlay
Run it again with the same --out to finish an interrupted run: what is done is skipped."""

EXAMPLES = """\
examples:
  camwidget explain model.keras photos/ --out report/
  camwidget explain model.keras a.jpg b.jpg --out report/ --layer block5_conv3 --method gradcam++
  camwidget explain mypackage.models:build photos/ --out report/ --class 281 --batch-size 32
  camwidget explain model.keras photos/ --out report/ --ray auto      (a running Ray cluster)"""


def parser() -> argparse.ArgumentParser:
    main = argparse.ArgumentParser(prog="camwidget", description="Where is my Keras model looking?")
    commands = main.add_subparsers(dest="command", required=True, metavar="COMMAND")
    explain = commands.add_parser(
        "explain", help="explain many pictures; write overlays, maps, a table and a gallery",
        description=DESCRIPTION, epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    explain.add_argument("model", metavar="MODEL",
                         help="a .keras (or .h5) file, loaded in Keras's safe mode; or module:function returning a model")  # fmt: skip
    explain.add_argument("images", metavar="IMAGES", nargs="+", help="picture files or folders (searched recursively)")
    explain.add_argument("--out", required=True, metavar="DIR", help="the output folder (made if missing)")
    explain.add_argument("--layer", help="the layer to explain (default: the last spatial feature layer)")
    explain.add_argument("--method", default="gradcam", help="gradcam (default), gradcam++, hirescam, xgradcam, "
                         "layercam, scorecam, eigencam, cam, guided-gradcam")  # fmt: skip
    explain.add_argument("--class", dest="class_index", type=int, metavar="INDEX",
                         help="explain this class in every picture (default: each picture's top class)")  # fmt: skip
    explain.add_argument("--target", metavar="SPEC", help="instead of a class: unit:I (a regression unit) or "
                         "module:function returning a target (see camwidget.targets)")  # fmt: skip
    explain.add_argument("--batch-size", type=int, default=16, metavar="N", help="pictures per pass (default 16)")
    explain.add_argument("--max-side", type=int, default=1024, metavar="PX",
                         help="for a model that takes any size: at most this many pixels on the longer side")  # fmt: skip
    explain.add_argument("--class-names", metavar="FILE", help="a text file with one class name per line")
    explain.add_argument("--no-overlays", action="store_true", help="write maps and tables only (faster)")
    explain.add_argument("--ray", metavar="ADDRESS",
                         help="spread the batches over a Ray cluster: its address, or auto (pip install camwidget[ray])")  # fmt: skip
    return main


def load_model(spec: str) -> Any:
    """A model from a .keras/.h5 file (safe mode: no arbitrary code) or from module:function."""
    import keras

    if os.path.exists(spec) or spec.endswith((".keras", ".h5")):
        if not os.path.exists(spec):
            raise SystemExit(f"camwidget: model file {spec!r} does not exist")
        try:
            return keras.models.load_model(spec, safe_mode=True, compile=False)
        except Exception as exc:  # noqa: BLE001 - one clear line, not a traceback
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise SystemExit(f"camwidget: could not load the model file {spec!r}: {first}") from None
    if ":" not in spec:
        raise SystemExit(f"camwidget: MODEL must be a .keras file or module:function, not {spec!r}")
    module_name, function_name = spec.rsplit(":", 1)
    try:
        function = getattr(importlib.import_module(module_name), function_name)
        return function()
    except Exception as exc:  # noqa: BLE001
        raise SystemExit(f"camwidget: could not make the model from {spec!r}: {type(exc).__name__}: {exc}") from None


def parse_target(spec: str | None) -> Any:
    if spec is None:
        return None
    from . import targets

    if spec.startswith("unit:"):
        return targets.Unit(int(spec[5:]))
    if ":" in spec:
        module_name, name = spec.rsplit(":", 1)
        return getattr(importlib.import_module(module_name), name)()  # a factory: module:function() is the target
    raise SystemExit(f"camwidget: --target must be unit:I or module:function, not {spec!r}")


def explain_command(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from .batch import explain_many, picture_sources
    from .errors import CAMError
    from .quiet import quiet_tensorflow
    from .report import Report

    try:
        report = Report(args.out)  # refused before any work when it cannot be written
    except CAMError as exc:
        print(f"camwidget: {exc}", file=sys.stderr)
        return 2
    quiet_tensorflow()
    model = load_model(args.model)
    class_names = None
    if args.class_names:
        with open(args.class_names, encoding="utf-8") as f:
            class_names = [line.strip() for line in f if line.strip()]
    images = args.images if len(args.images) > 1 else args.images[0]
    try:
        total = sum(1 for name, _ in picture_sources(images) if not report.done(name))
    except (CAMError, FileNotFoundError) as exc:
        print(f"camwidget: {exc}", file=sys.stderr)
        return 2
    options = dict(
        layer=args.layer, method=args.method, class_index=args.class_index, target=parse_target(args.target),
        batch_size=args.batch_size, max_side=args.max_side, class_names=class_names,
        overlays=not args.no_overlays, skip=report.done, progress_bar=False,
    )  # fmt: skip
    start = time.perf_counter()
    try:
        bound = ("layer", "method", "class_index", "target", "max_side", "class_names", "no_overlays")
        settings = {k: v for k, v in vars(args).items() if k in bound}
        report.claim(model, settings)
        if args.ray:
            from .scale import explain_on_ray

            results = explain_on_ray(model, images, address=args.ray, **options)  # the model travels as bytes
        else:
            results = explain_many(model, images, **options)
        with tqdm(total=total, unit="img", desc="explaining") as bar:
            for item in results:
                report.add(item)
                bar.update(1)
    except CAMError as exc:
        print(f"camwidget: {exc}", file=sys.stderr)
        return 2
    records = report.finish()
    seconds = time.perf_counter() - start
    print(f"{total} pictures in {seconds:.1f} s ({total / seconds if seconds else 0:.1f} per second); "
          f"{len(records) - len(report.errors)} in {args.out} (gallery.html, results.csv, maps.npz)")  # fmt: skip
    for record in report.errors:
        print(f"skipped {record['file']}: {record['error']}", file=sys.stderr)
    return 1 if report.errors else 0


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.command == "explain":
        return explain_command(args)
    return 2


if __name__ == "__main__":
    sys.exit(main())
