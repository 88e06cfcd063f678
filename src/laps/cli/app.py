"""``laps app``: serve a page where a video is dropped and classified by a checkpoint."""

from __future__ import annotations

import argparse
import sys

from laps.cli.common import CHECKPOINT_HELP, add_command, add_device_flag
from laps.cli.timeline_flags import add_timeline_flags, check_timeline_flags
from laps.cli.zero_shot_flags import add_zero_shot_flags, read_labels

APP_EXAMPLES = """examples:
  laps app --checkpoint runs/demo/laps                 # http://127.0.0.1:7860
  laps app --checkpoint runs/mine --port 8000 --stride 0.5
  laps app --checkpoint runs/mine --host 0.0.0.0       # reachable from other machines
  laps app --checkpoint local-dir:clip_b16 --labels "dancing,cooking"   # zero-shot, labels editable in the page
"""


def add_parsers(subparsers: argparse._SubParsersAction) -> None:
    p = add_command(subparsers, "app", "serve a local page to classify videos by dropping them", None, APP_EXAMPLES)
    p.add_argument("--checkpoint", required=True, help=CHECKPOINT_HELP)
    p.add_argument("--host", default="127.0.0.1",
                   help="address to bind (default 127.0.0.1: this machine only; 0.0.0.0 exposes the page, "
                        "and with it the videos the server can read by path)")
    p.add_argument("--port", type=int, default=7860, help="port (default 7860; 0: any free port)")
    add_device_flag(p)
    p.add_argument("--max-mb", type=float, default=200.0, help="largest upload or download, MB (default 200)")
    p.add_argument("--top-k", type=int, default=5, help="classes shown (default 5)")
    p.add_argument("--views", default="1x3", help="temporal clips x spatial crops for the top classes (default 1x3)")
    p.add_argument("--long-after", type=float, default=8.0,
                   help="videos this many seconds or longer also get a timeline (default 8)")
    add_timeline_flags(p.add_argument_group("timeline of a long video (as laps predict --timeline)"))
    add_zero_shot_flags(p)
    p.set_defaults(func=run_app)


def _model(args: argparse.Namespace):
    """The model and, with ``--labels``, the function that gives it other labels (the page's box)."""
    from laps.cli.zero_shot_flags import load_classifier

    if args.labels is None:
        return load_classifier(args), None
    from laps.infer.device import resolve_device
    from laps.openvocab import load_open_clip, read_templates, relabel, zero_shot

    clip = load_open_clip(args.checkpoint)
    templates = read_templates(args.templates) if args.templates else None
    model = zero_shot(clip, read_labels(args.labels), templates, temporal=args.temporal or "laps",
                      num_frames=args.num_frames or 8).to(resolve_device(args.device))
    return model, lambda names: relabel(model, clip, names, templates)


def run_app(args: argparse.Namespace) -> int:
    from laps.app.analyse import Settings
    from laps.app.server import App, make_server

    check_timeline_flags(args)
    settings = Settings(top_k=args.top_k, views=args.views, long_after=args.long_after, window=args.window,
                        stride=args.stride, smooth=args.smooth, switch=args.switch, background=args.background)
    server = make_server(None, args.host, args.port)  # a port in use is refused before the model loads
    try:
        model, relabel = _model(args)
        server.app = App(model, settings, max_bytes=int(args.max_mb * 1e6), relabel=relabel)
        host, port = server.server_address[:2]
        print(f"laps app: serving {args.checkpoint} on http://{host}:{port}/ (Ctrl-C stops it)", file=sys.stderr,
              flush=True)
        server.serve_forever()
    finally:
        server.server_close()
    return 0
