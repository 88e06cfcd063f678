"""Model benchmark: the same as ``laps bench model``. Usage: python benchmarks/bench_model.py [OPTIONS]

See ``laps bench --help`` and BENCHMARKS.md for the options and the commands behind the tables."""

import sys

from laps.cli import main

if __name__ == "__main__":
    sys.exit(main(["bench", "model", *sys.argv[1:]]))
