"""Data-pipeline benchmark (clips/s, laps vs naive decoding).

Usage: python benchmarks/bench_data.py [--quick] [--json PATH]
"""

import argparse

from laps.bench.data import run_data_bench

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="tiny video, few clips: a smoke test")
    parser.add_argument("--json", default=None, help="also write the results as JSON here")
    args = parser.parse_args()
    run_data_bench(quick=args.quick, json_path=args.json)
