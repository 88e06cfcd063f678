"""The ``laps`` command line: one-line errors (exit 2), ``--debug`` for tracebacks."""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import warnings

from laps import __version__
from laps.errors import LapsError

#: modules that each add their subcommands with ``add_parsers(subparsers)``
COMMAND_MODULES = ("laps.cli_model", "laps.data.cli", "laps.engine.cli", "laps.analysis.cli")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="laps",
        description="LAPS video transformers: Leap Attention + Periodic Shift over timm image backbones.",
        epilog="Run 'laps COMMAND --help' for the options and examples of each command.",
    )
    parser.add_argument("--version", action="version", version=f"laps {__version__}")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks on errors")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
            continue
        module.add_parsers(subparsers)
    return parser


def print_json(obj) -> None:
    print(json.dumps(obj, indent=2, sort_keys=True))


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    warnings.filterwarnings("ignore", category=FutureWarning)
    try:
        return int(args.func(args) or 0)
    except (LapsError, FileNotFoundError) as exc:
        if args.debug:
            raise
        print(f"laps {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"laps {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
