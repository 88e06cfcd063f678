"""How long ``laps app`` takes to answer: a 2-second and a 60-second synthetic video, each posted
``--requests`` times to a server started for the run.

Usage: python benchmarks/app_latency.py --checkpoint runs/e8 [--requests 3]
Writes benchmarks/results/app_latency.json: per video, the seconds each answer reports and its top class.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from laps.data.encoding import write_video
from laps.data.synthetic import CLASSES
from laps.data.synthetic_timeline import long_synthetic

VIDEOS = {"2s": [(CLASSES.index("drifting_down"), 2.0)],
          "60s": [(CLASSES.index("drifting_left"), 30.0), (CLASSES.index("brightening"), 30.0)]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--requests", type=int, default=3)
    parser.add_argument("--port", type=int, default=7871)
    parser.add_argument("--output", default="benchmarks/results/app_latency.json")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp())
    for name, parts in VIDEOS.items():
        write_video(work / f"{name}.mp4", long_synthetic(parts, seed=100)[0], fps=8)
    base = f"http://127.0.0.1:{args.port}"
    server = subprocess.Popen([sys.executable, "-m", "laps", "app", "--checkpoint", args.checkpoint, "--port",
                               str(args.port)], stderr=subprocess.DEVNULL)
    try:
        for _ in range(300):
            try:
                urllib.request.urlopen(base + "/", timeout=5)
                break
            except OSError:
                time.sleep(1)
        results = {}
        for name in VIDEOS:
            body = (work / f"{name}.mp4").read_bytes()
            answers = []
            for _ in range(args.requests):
                request = urllib.request.Request(base + "/api/predict", data=body, method="POST",
                                                 headers={"X-Filename": f"{name}.mp4"})
                answer = json.loads(urllib.request.urlopen(request, timeout=600).read())
                answers.append({"seconds": answer["seconds"], "top": answer["top"][0]["label"],
                                "segments": len((answer["timeline"] or {}).get("segments", []))})
            results[name] = answers
    finally:
        server.terminate()
        server.wait()
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps(results, indent=1) + "\n")
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
