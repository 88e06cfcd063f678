"""What the command modules share: the command builder, the shared flags' help and types, and
small printers. The commands import this module, never :mod:`laps.cli` (which imports them)."""

from __future__ import annotations

import argparse
import functools
import json

from laps.infer.device import DEFAULT_DEVICE, DEVICE_HELP, check_device

#: the help of every ``--checkpoint``: the four forms :func:`laps.from_pretrained` reads
CHECKPOINT_HELP = ("a run directory (its best weights), a save_pretrained folder, a .safetensors weights file or "
                   "a Hugging Face Hub id (a bare user/name with no local folder user)")

def workers(text: str) -> int | str:
    """argparse type of every ``--workers``: ``auto`` or an integer >= 0 (0: loaders read in process)."""
    if text == "auto" or text.isdigit():
        return text if text == "auto" else int(text)
    raise argparse.ArgumentTypeError(f"expected 'auto' or an integer >= 0, got {text!r}")


def add_command(subparsers: argparse._SubParsersAction, name: str, summary: str, description: str | None,
                examples: str) -> argparse.ArgumentParser:
    """A command with a one-line ``summary`` (``laps --help``), a ``description`` and an examples epilog."""
    return subparsers.add_parser(name, help=summary, description=description or summary, epilog=examples,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)


def counted(count: int, noun: str) -> str:
    """``1 segment``, ``2 segments``."""
    return f"{count} {noun}{'' if count == 1 else 's'}"


def print_json(obj) -> None:
    print(json.dumps(obj, indent=2, sort_keys=True))


def device(text: str) -> str:
    """argparse type of every ``--device`` (:data:`~laps.infer.device.DEVICE_HELP`)."""
    try:
        return check_device(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_device_flag(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """The ``--device`` of every command that runs a model: one vocabulary, default ``auto``."""
    parser.add_argument("--device", type=device, default=DEFAULT_DEVICE, help=DEVICE_HELP)


def pinned_threads(run):
    """A command's ``run(args)`` run with a fixed torch thread count, as training runs: the CPU cores
    this process may use (shared by a node's torchrun processes), whatever ``OMP_NUM_THREADS`` says."""
    @functools.wraps(run)
    def pinned(args: argparse.Namespace) -> int:
        from laps.data.cores import cores_per_process
        from laps.infer.runtime import threads

        with threads(cores_per_process()):
            return run(args)

    return pinned
