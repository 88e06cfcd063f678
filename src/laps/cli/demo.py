"""``laps demo``: train base2d and LAPS on the synthetic dataset and compare them."""

from __future__ import annotations

import argparse

from laps.cli.common import add_command

DEMO_EXAMPLES = """examples:
  laps demo                      # base2d vs laps on the synthetic dataset, report in runs/demo/report.md
  laps demo --ablation           # also ps and la
  laps demo --quick              # seconds: tiny sizes, a smoke test, into runs/demo
"""


def add_parsers(subparsers: argparse._SubParsersAction) -> None:
    p = add_command(subparsers, "demo", "train base2d and LAPS on the synthetic dataset and compare", None,
                    DEMO_EXAMPLES)
    p.add_argument("--output", default="runs/demo", help="output folder (default runs/demo)")
    p.add_argument("--quick", action="store_true", help="tiny sizes, one epoch: a smoke test in seconds")
    p.add_argument("--ablation", action="store_true", help="also train ps and la")
    p.add_argument("--videos-per-class", type=int, default=None, help="synthetic videos per class (default 150)")
    p.add_argument("--views", default="2x1", help="evaluation views, clips x crops (default 2x1)")
    p.set_defaults(func=run_demo_command)


def run_demo_command(args: argparse.Namespace) -> int:
    from laps.demo import run_demo

    run_demo(args.output, quick=args.quick, ablation=args.ablation, videos_per_class=args.videos_per_class, views=args.views)
    return 0
