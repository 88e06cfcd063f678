"""The flags that turn window scores into segments, shared by ``laps predict --timeline`` and ``laps app``.

Their defaults are those of :mod:`laps.serve.segmenting`, chosen by measurement (docs/deploy.md);
they are repeated here so that building the parser imports nothing heavy.
"""

from __future__ import annotations

import argparse


def add_timeline_flags(group: argparse._ActionsContainer) -> None:
    """``--window``, ``--stride``, ``--smooth``, ``--switch`` and ``--background``."""
    group.add_argument("--window", type=float, default=2.0, help="seconds a clip covers (default 2)")
    group.add_argument("--stride", type=float, default=1.0, help="seconds between clip starts (default 1)")
    group.add_argument("--smooth", type=int, default=3, help="windows the scores are averaged over (default 3)")
    group.add_argument("--switch", type=float, default=4.0,
                       help="penalty (nats) for each change of label: higher gives fewer, longer segments (default 4; "
                            "2 is better at --stride 2)")
    group.add_argument("--background", type=float, default=0.2,
                       help="smoothed score a class must beat for a window to leave 'background' (default 0.2)")


def check_timeline_flags(args: argparse.Namespace) -> None:
    """A one-line :class:`~laps.errors.ConfigError` for values the decoding cannot use."""
    from laps.errors import ConfigError

    if args.window <= 0 or args.stride <= 0 or args.smooth < 1 or args.switch < 0 or not 0 < args.background < 1:
        raise ConfigError(f"--window and --stride must be > 0, --smooth >= 1, --switch >= 0 and --background in "
                          f"(0, 1); got {args.window}, {args.stride}, {args.smooth}, {args.switch} and {args.background}")
