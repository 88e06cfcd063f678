"""``laps search``: rank the videos of a features folder against a sentence (text-to-video search)."""

from __future__ import annotations

import argparse
import json

from laps.cli.common import add_command

EXAMPLES = """examples:
  laps features --checkpoint local-dir:clip_b16 --space joint --output feats/ videos/
  laps search feats/ "a person juggling" --model local-dir:clip_b16 --top-k 5
"""


def add_parsers(subparsers: argparse._SubParsersAction) -> None:
    p = add_command(subparsers, "search", "rank the videos of a features folder against a sentence",
                    "Rank the videos whose features laps features --space joint wrote into FEATURES_DIR by the "
                    "cosine between each video's feature and the sentence's text embedding.", EXAMPLES)
    p.add_argument("features", metavar="FEATURES_DIR")
    p.add_argument("sentence")
    p.add_argument("--model", required=True, metavar="OPENCLIP_ID",
                   help="the open_clip model the features came from (hf-hub:ORG/REPO, local-dir:PATH or a folder "
                        "with open_clip_config.json): its text tower embeds the sentence")
    p.add_argument("--top-k", type=int, default=10)
    p.add_argument("--json", action="store_true", help="print a JSON list of {video, score}")
    p.set_defaults(func=run_search)


def run_search(args: argparse.Namespace) -> int:
    from laps.serve.search import rank_videos

    ranked = rank_videos(args.features, args.sentence, args.model, args.top_k)
    if args.json:
        print(json.dumps([{"video": video, "score": score} for score, video in ranked], indent=2))
    else:
        print("\n".join(f"{score:.4f}  {video}" for score, video in ranked))
    return 0
