"""``laps app``: serve a page where a video is dropped and classified by a checkpoint."""

from __future__ import annotations

import argparse
import sys

from laps.cli.common import CHECKPOINT_HELP, add_command, add_device_flag
from laps.cli.timeline_flags import add_timeline_flags, check_timeline_flags

APP_EXAMPLES = """examples:
  laps app --checkpoint runs/demo/laps                 # http://127.0.0.1:7860
  laps app --checkpoint runs/mine --port 8000 --stride 0.5
  laps app --checkpoint runs/mine --host 0.0.0.0       # reachable from other machines
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
    p.set_defaults(func=run_app)


def run_app(args: argparse.Namespace) -> int:
    from laps.app.analyse import Settings
    from laps.app.server import App, make_server
    from laps.serve.inference import load_model

    check_timeline_flags(args)
    settings = Settings(top_k=args.top_k, views=args.views, long_after=args.long_after, window=args.window,
                        stride=args.stride, smooth=args.smooth, switch=args.switch, background=args.background)
    server = make_server(None, args.host, args.port)  # a port in use is refused before the model loads
    try:
        server.app = App(load_model(args.checkpoint, args.device), settings, max_bytes=int(args.max_mb * 1e6))
        host, port = server.server_address[:2]
        print(f"laps app: serving {args.checkpoint} on http://{host}:{port}/ (Ctrl-C stops it)", file=sys.stderr,
              flush=True)
        server.serve_forever()
    finally:
        server.server_close()
    return 0
