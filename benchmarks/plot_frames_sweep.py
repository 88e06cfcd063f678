"""Plot time and memory against T from one or more ``laps bench model --json`` results.

Usage: python benchmarks/plot_frames_sweep.py OUT.png RESULT.json [RESULT.json ...]
(rows of all results are drawn together, e.g. a latency sweep and a memory sweep run apart)."""

import argparse
import json
from pathlib import Path

from laps.bench.model import plot_frames_sweep

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("output", help="PNG to write")
    parser.add_argument("results", nargs="+", help="JSON files written by laps bench model --json")
    args = parser.parse_args()
    results = [json.loads(Path(path).read_text()) for path in args.results]
    plot_frames_sweep({**results[0], "rows": [row for result in results for row in result["rows"]]}, args.output)
    print(f"plot written to {args.output}")
