"""The ``laps`` command line: one-line errors, ``--debug`` for tracebacks.

Exit codes: 0 success; 1 ``laps predict`` or ``laps features`` met unreadable videos (the others
are done; under ``torchrun``, ``laps features`` records them and exits 0); 2 an error (bad arguments, config, data or checkpoint); 3 training diverged (non-finite losses or
gradients, :class:`~laps.errors.TrainingDiverged`); 4 too many broken or missing videos
(:class:`~laps.errors.TooManyBrokenFiles`); 75 training stopped by SIGTERM / SIGUSR1 after
writing a checkpoint (:class:`~laps.errors.Preempted`: run again with ``--resume``); 130 Ctrl-C.

Every command lives in one module of this package named after it (``laps data`` and
``laps make-synthetic`` share ``data``), which registers it with ``add_parsers(subparsers)`` (with
the shared flags and helpers of :mod:`laps.cli.common`, never this module) and
imports what the command needs only when it runs: building the parser imports neither torch, timm,
PyAV, fvcore nor matplotlib, so ``laps --help`` answers at once and ``laps bench model`` runs where
PyAV is not installed.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
import warnings

from laps.errors import LapsError, Preempted
from laps.version import __version__

#: modules that each add their commands with ``add_parsers(subparsers)``, in the order ``laps --help`` lists them
COMMAND_MODULES = ("laps.cli.demo", "laps.cli.train", "laps.cli.eval", "laps.cli.predict", "laps.cli.export",
                   "laps.cli.flops", "laps.cli.features", "laps.cli.search", "laps.cli.data", "laps.cli.bench", "laps.cli.app")

#: modules of the training toolkit (``pip install 'laps[train]'``) that the core install lacks
TOOLKIT_MODULES = ("av", "fvcore", "tensorboard", "matplotlib", "omegaconf", "tqdm", "yaml", "numpy")


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
        importlib.import_module(name).add_parsers(subparsers)
    return parser


class _StderrHandler(logging.Handler):
    """Writes records to the ``sys.stderr`` of the moment (not the one at creation)."""

    def emit(self, record: logging.LogRecord) -> None:
        sys.stderr.write(self.format(record) + "\n")
        sys.stderr.flush()


def show_laps_log() -> None:
    """Print laps's own log records (INFO and up, e.g. a run's start and stop) to stderr, once."""
    log = logging.getLogger("laps")
    if not any(isinstance(h, _StderrHandler) for h in log.handlers):
        log.addHandler(_StderrHandler())
        log.setLevel(logging.INFO)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    # the one process-wide setting of the command line: timm and torch's deprecation notices are
    # not the user's to act on
    warnings.filterwarnings("ignore", category=FutureWarning)
    show_laps_log()
    try:
        return int(args.func(args) or 0)
    except (LapsError, FileNotFoundError) as exc:
        if args.debug:
            raise
        kind = "" if isinstance(exc, Preempted) else "error: "  # a stop that was asked for is no error
        print(f"laps {args.command}: {kind}{exc}", file=sys.stderr)
        return getattr(exc, "exit_code", 2)
    except ModuleNotFoundError as exc:
        if args.debug or exc.name not in TOOLKIT_MODULES:
            raise
        print(f"laps {args.command}: error: this command needs the training toolkit (no module {exc.name!r}); "
              "install it with: pip install 'laps[train]'", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"laps {args.command}: interrupted", file=sys.stderr)
        return 130
