"""The command line: ``camwidget explain ...`` and ``camwidget audit ...`` (``python -m camwidget`` too).

The entry point stands above every stage it hands work to: :mod:`camwidget.pipeline.cli` (explain) and
:mod:`camwidget.audits.command` (audit) each add their subcommand's options and run it; here the parser is
put together and every failure becomes one line on stderr and an exit code.
"""

from __future__ import annotations

import os
import sys

from camwidget.audits import command as audit
from camwidget.pipeline import cli as explain
from camwidget.pipeline.cli import OneLineParser
from camwidget.pipeline.model_file import UsageError, first_line
from camwidget.version import __version__


def parser() -> OneLineParser:
    """``camwidget`` with its subcommands, each with its own --help."""
    main = OneLineParser(prog="camwidget", description="Where is my Keras model looking?")
    main.add_argument("--version", action="version", version=f"camwidget {__version__}")
    commands = main.add_subparsers(dest="command", required=True, metavar="COMMAND")
    explain.add_parser(commands)
    audit.add_parser(commands)
    return main


def main(argv: list[str] | None = None) -> int:
    """Run the command in `argv` (default: the process's arguments); return the exit code (see each command's
    --help: 0 done, 1 some pictures unreadable, 2 bad usage, 130 interrupted)."""
    args = parser().parse_args(argv)
    from camwidget.errors import CAMError

    try:
        return explain.explain_command(args) if args.command == "explain" else audit.run(args)
    except (UsageError, CAMError, FileNotFoundError, NotADirectoryError, TypeError) as exc:
        print(f"camwidget: {first_line(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; run the same command again to resume", file=sys.stderr)
        return 130
    except Exception as exc:  # a bug of ours, not something typed: one line still, the traceback on request
        if os.environ.get("CAMWIDGET_DEBUG"):
            raise
        print(
            f"camwidget: unexpected {type(exc).__name__}: {first_line(exc)} (a bug: please report it; "
            "CAMWIDGET_DEBUG=1 shows the traceback)",
            file=sys.stderr,
        )
        return 1


if __name__ == "__main__":
    sys.exit(main())
