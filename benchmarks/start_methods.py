"""What a start method that inherits no library threads would cost: seconds to the first batch of
a 2-worker DataLoader and to check 10 videos with 2 processes, under fork, forkserver and spawn.

Usage: python benchmarks/start_methods.py [--repeats 3]
Each measurement runs in a fresh interpreter (a forkserver is started once per interpreter), over
10 generated videos of 8 frames at 32 px, so what is timed is starting the processes, not decoding.
Prints one JSON line per run and the median of each method.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

METHODS = ("fork", "forkserver", "spawn")


def measure(method: str, data: Path) -> dict[str, float]:
    """In this interpreter: seconds to the first batch of a 2-worker loader, and to check every video with 2 processes."""
    from torch.utils.data import DataLoader

    from laps.data import load_annotations
    from laps.data.annotations import resolve_path
    from laps.data.check import check_video
    from laps.data.dataset import VideoDataset

    records = load_annotations(data / "train.txt", data)
    dataset = VideoDataset(records, data, num_frames=4, sampling_rate=2, train=True, img_size=32)
    context = multiprocessing.get_context(method)
    began = time.perf_counter()
    loader = DataLoader(dataset, batch_size=2, num_workers=2, multiprocessing_context=context)
    next(iter(loader))
    first_batch = time.perf_counter() - began
    began = time.perf_counter()
    with ProcessPoolExecutor(2, mp_context=context) as pool:
        assert not any(pool.map(check_video, [resolve_path(data, r.path) for r in records]))
    return {"method": method, "first_batch_s": round(first_batch, 2), "check_s": round(time.perf_counter() - began, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--measure", nargs=2, metavar=("METHOD", "DATA"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(args.measure[0], Path(args.measure[1]))))
        return
    from laps.data import make_synthetic

    with tempfile.TemporaryDirectory() as tmp:
        make_synthetic(tmp, videos_per_class=2, seed=0, num_frames=8, size=32)
        runs: dict[str, list[dict[str, float]]] = {m: [] for m in METHODS}
        for _ in range(args.repeats):
            for method in METHODS:
                out = subprocess.run([sys.executable, __file__, "--measure", method, tmp], check=True,
                                     capture_output=True, text=True).stdout
                runs[method].append(json.loads(out.splitlines()[-1]))
                print(out.strip(), flush=True)
    for method, rows in runs.items():
        print(f"{method:>10}: first batch {statistics.median(r['first_batch_s'] for r in rows):6.2f} s, "
              f"check {statistics.median(r['check_s'] for r in rows):6.2f} s (median of {len(rows)})")


if __name__ == "__main__":
    main()
