"""``camwidget explain MODEL IMAGES... --out DIR``: the explain subcommand (its options, and the run); the
command line's entry point is :mod:`camwidget.command_line`.

Writes overlays, maps, a table and an HTML gallery (see :mod:`camwidget.pipeline.report`); a run started again with the
same ``--out`` skips the pictures already done. ``--ray ADDRESS`` spreads the batches over a Ray cluster.
"""

from __future__ import annotations

import argparse
import functools
import itertools
import signal
import sys
import textwrap
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, NoReturn

from camwidget import notes
from camwidget.limits import MAX_SIDE
from camwidget.pipeline.model_file import UsageError, call_spec, load_model
from camwidget.version import __version__

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


EXIT_CODES = """\
exit codes:
  0    every picture explained
  1    some pictures could not be read (listed on stderr, kept out of the results)
  2    bad usage: an option, the model or the output folder (one line on stderr says which)
  130  interrupted (Ctrl-C): what was finished is kept; run the same command again to resume"""


class OneLineParser(argparse.ArgumentParser):
    """argparse, with its errors on one line (and exit code 2, argparse's convention)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message} (see {self.prog} --help)\n")


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive whole number, not {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive whole number, not {text!r}")
    return value


class _HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """The description as written; each option's help wrapped without breaking a method's name at its hyphens
    ('smooth-gradcam++' stays whole)."""

    def _split_lines(self, text: str, width: int) -> list[str]:
        return textwrap.wrap(" ".join(text.split()), width, break_on_hyphens=False)


def add_parser(commands: Any) -> None:
    """The explain subcommand on the main parser's subcommands (see :mod:`camwidget.command_line`)."""
    explain = commands.add_parser(
        "explain",
        help="explain many pictures; write overlays, maps, a table and a gallery",
        description=DESCRIPTION,
        epilog=EXAMPLES + "\n\n" + EXIT_CODES,
        formatter_class=_HelpFormatter,
    )
    explain.add_argument(
        "model",
        metavar="MODEL",
        help="a .keras (or .h5) file, loaded in Keras's safe mode; or module:function returning a model",
    )
    explain.add_argument("images", metavar="IMAGES", nargs="+", help="picture files or folders (searched recursively)")
    explain.add_argument("--out", required=True, metavar="DIR", help="the output folder (made if missing)")
    explain.add_argument("--layer", help="the layer to explain (default: the last spatial feature layer)")
    explain.add_argument(
        "--method",
        default="gradcam",
        help="gradcam (default), gradcam++, hirescam, xgradcam, layercam, gradcam-elementwise, eigen-gradcam, "
        "smooth-gradcam++, shapley-cam, fullgrad, scorecam, sscam, iscam, ablation-cam, eigencam, fem, kpca-cam, "
        "finer-cam, cam, guided-gradcam, random-cam; settings in brackets, e.g. 'finer-cam(gamma=0.5, top=2)'",
    )
    explain.add_argument(
        "--class",
        dest="class_index",
        type=int,
        metavar="INDEX",
        help="explain this class in every picture (default: each picture's top class)",
    )
    explain.add_argument(
        "--target",
        metavar="SPEC",
        help="instead of a class: unit:I (a regression unit) or module:function returning a target "
        "(see camwidget.targets)",
    )
    explain.add_argument(
        "--batch-size", type=positive_int, default=16, metavar="N", help="pictures per pass (default 16)"
    )
    explain.add_argument(
        "--max-side",
        type=positive_int,
        default=MAX_SIDE,
        metavar="PX",
        help=f"for a model that takes any size: at most this many pixels on the longer side (default {MAX_SIDE})",
    )
    explain.add_argument("--class-names", metavar="FILE", help="a text file with one class name per line")
    explain.add_argument("--no-overlays", action="store_true", help="write maps and tables only (faster)")
    explain.add_argument(
        "--ray",
        metavar="ADDRESS",
        help="spread the batches over a Ray cluster: its address, or auto (pip install camwidget[ray])",
    )


def parse_target(spec: str | None) -> Any:
    """--target as typed -> a target (unit:I, or module:function returning one); UsageError otherwise."""
    if spec is None:
        return None
    from camwidget import targets

    if spec.startswith("unit:"):
        try:
            return targets.Unit(int(spec[5:]))
        except ValueError:
            raise UsageError(f"--target {spec!r}: the unit must be a whole number, as in unit:3") from None
    if ":" in spec:
        return call_spec("--target", spec)  # a factory: module:function() is the target
    raise UsageError(f"--target must be unit:I or module:function, not {spec!r}")


def read_class_names(path: str | None) -> list[str] | None:
    if path is None:
        return None
    try:
        with open(path, encoding="utf-8") as f:
            return [line.strip() for line in f if line.strip()]
    except OSError as exc:
        raise UsageError(f"--class-names {path!r}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise UsageError(f"--class-names {path!r}: not a UTF-8 text file (one class name per line)") from None


@dataclass
class Run:
    """What a command that writes into --out starts from (:func:`start_run`)."""

    model: Any
    pictures: list[Any]  # camwidget.pipeline.batch.Picture, in input order
    report: Any  # camwidget.pipeline.report.Report of --out: output names given, earlier results read
    class_names: list[str] | None
    target: Any


def start_run(args: argparse.Namespace, inputs: Sequence[str] = ()) -> Run:
    """What ``explain`` and ``audit`` do first, in this order, so that a mistake is said before any work: the
    output folder checked (not made), the class names and ``--target`` read, the model loaded, the pictures
    found (never inside --out), and each picture given its output name in --out's :class:`Report`.

    Args:
        args: the command's options (model, images, out, class_names, and target where it has one).
        inputs: more paths that must never be written (the audit's masks folder).

    Returns:
        A :class:`Run`.
    """
    from camwidget.pipeline.batch import find_pictures
    from camwidget.pipeline.outputs import OutputFolder
    from camwidget.pipeline.report import Report, check_output_folder

    check_output_folder(args.out)  # refused before any work when it cannot be written
    class_names = read_class_names(args.class_names)
    target = parse_target(getattr(args, "target", None))
    model = load_model(args.model)
    given = args.images if len(args.images) > 1 else args.images[0]
    pictures = find_pictures(given, exclude=OutputFolder.of(args.out).excluded_from_inputs)
    files = [p.source for p in pictures if isinstance(p.source, str)]
    report = Report(args.out, inputs=[*args.images, *files, *inputs])
    report.assign(pictures)
    return Run(model, pictures, report, class_names, target)


def explainer_of(args: argparse.Namespace) -> Callable[..., Iterator[Any]]:
    """explain_many, or with ``--ray ADDRESS`` the same on a Ray cluster (the model travels as bytes).

    Args:
        args: the command's options (``ray``: None, or the cluster's address).

    Returns:
        A function that takes explain_many's arguments and yields its results.
    """
    if args.ray:
        from camwidget.pipeline.on_ray import explain_on_ray

        return functools.partial(explain_on_ray, address=args.ray)
    from camwidget.pipeline.batch import explain_many

    return explain_many


def map_options(args: argparse.Namespace, run: Run) -> dict[str, Any]:
    """What both commands pass on to explain_many as given: the layer, method, target, batch size, class names.

    Args:
        args: the command's options.
        run: what :func:`start_run` read (the target and class names).

    Returns:
        explain_many's keyword arguments.
    """
    return {
        "layer": args.layer,
        "method": args.method,
        "target": run.target,
        "batch_size": args.batch_size,
        "class_names": run.class_names,
    }


def say_interrupted(run: Run) -> int:
    """After Ctrl-C: how many pictures are done (kept in --out), on stderr.

    Args:
        run: the run that was interrupted.

    Returns:
        The exit code, 130.
    """
    done = sum(run.report.done(p) for p in run.pictures)
    print(f"interrupted: {done} of {len(run.pictures)} done; run the same command again to resume", file=sys.stderr)
    return 130


def explain_command(args: argparse.Namespace) -> int:
    """The explain command: settings checked before anything is written; each picture's files under --out
    only (camwidget.pipeline.outputs); Ctrl-C keeps what is done."""
    from camwidget.quiet import quiet_tensorflow

    quiet_tensorflow()  # before anything imports Keras: TensorFlow's start-up lines never reach the terminal
    from tqdm import tqdm

    run = start_run(args)
    model, pictures, report = run.model, run.pictures, run.report
    todo = [p for p in pictures if not report.done(p)]
    bound = ("layer", "method", "class_index", "target", "max_side", "class_names", "no_overlays")
    report.claim(model, {k: v for k, v in vars(args).items() if k in bound})
    options = map_options(args, run) | {
        "class_index": args.class_index,
        "max_side": args.max_side,
        "overlays": not args.no_overlays,
        "progress_bar": False,
    }
    details = _details(args, model)
    start = time.perf_counter()
    bar = None
    try:
        results: Any = explainer_of(args)(model, todo, **options) if todo else iter(())
        first = next(results, None)  # the settings are checked on the first batch: an error shows alone
        # a bar only on a terminal (disable=None), cleared at the end: the error or the summary is what stays
        bar = tqdm(total=len(todo), unit="img", desc="explaining", leave=False, disable=None)
        for item in itertools.chain([first] if first is not None else [], results):
            report.add(item)
            bar.update(1)
    except KeyboardInterrupt:
        if bar is not None:
            bar.close()
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)  # the tables of what is done are written whole
        try:
            report.finish(details)
        finally:
            signal.signal(signal.SIGINT, previous)
        return say_interrupted(run)
    finally:
        if bar is not None:
            bar.close()
    records = report.finish(details)
    seconds = time.perf_counter() - start
    print(
        f"{len(todo)} pictures in {seconds:.1f} s ({len(todo) / seconds if seconds else 0:.1f} per second); "
        f"{len(records) - len(report.errors)} in {args.out} (gallery.html, results.csv, maps.npz)"
    )
    for record in report.errors:
        print(f"skipped {record['file']!r}: {record['error']}", file=sys.stderr)
    return 1 if report.errors else 0


def _details(args: argparse.Namespace, model: Any) -> list[tuple[str, Any]]:
    """What the gallery page says it shows."""
    import datetime

    shape = getattr(model, "input_shape", None)
    note = notes.note_of(model)
    return [
        *([("note", note)] if note else []),
        ("model", args.model),
        ("input size", shape if shape is not None else "any"),
        ("method", args.method),
        ("layer", args.layer or "the last spatial feature layer"),
        (
            "explained",
            f"class {args.class_index}" if args.class_index is not None else args.target or "each picture's top class",
        ),
        ("class names", args.class_names or "none given: ImageNet's for 1000 classes, else numbers"),
        ("camwidget", __version__),
        ("date", datetime.date.today().isoformat()),
    ]
