"""``laps app``: a page, served by the standard library, where a video is dropped and classified.

- ``GET /``: the page (``page.html``).
- ``POST /api/predict``: the body is the video's bytes (``X-Filename`` names it), or the body is
  empty and ``?source=`` gives a path on this machine or an http(s) URL. The answer is JSON from
  :func:`laps.app.analyse.analyse` with ``queued`` (seconds spent waiting for the model), or
  ``{"error": message}`` with status 400 (bad video), 413 (too large) or 500 (anything else).
- ``GET /api/labels``: ``{"labels": [...], "editable": bool}``, the model's class names; ``POST
  /api/labels`` with ``{"labels": "a, b, c"}`` makes a zero-shot model (``laps app --labels``) a
  classifier of those names instead (``editable``), answering as ``GET``.

Requests are served by threads, and one lock lets a single request use the model at a time: the
others wait their turn (at most ``max_waiting`` of them; more get 503). An error in one request is
its own answer and never stops the server.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import shutil
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from pathlib import Path
from typing import Any

from laps.app.analyse import Settings, analyse
from laps.errors import ConfigError, LapsError
from laps.models import VideoClassifier

log = logging.getLogger(__name__)
CHUNK = 1 << 20


class BadRequest(Exception):
    """A request the user can fix: ``status`` and a one-line message for the page."""

    def __init__(self, status: HTTPStatus, message: str) -> None:
        super().__init__(message)
        self.status = status


class App:
    """The model, the settings and the queue shared by every request."""

    def __init__(self, model: VideoClassifier, settings: Settings, max_bytes: int, max_waiting: int = 16,
                 relabel: Callable[[list[str]], None] | None = None) -> None:
        self.model, self.settings, self.max_bytes, self.max_waiting = model, settings, max_bytes, max_waiting
        self.relabel = relabel  # a zero-shot model's: new class names -> its head, in place
        self.model_lock = threading.Lock()
        self.waiting = 0
        self.count_lock = threading.Lock()

    def run(self, path: str, name: str) -> dict[str, Any]:
        """:func:`analyse` once the model is free -> its result plus ``queued`` seconds."""
        with self.count_lock:
            if self.waiting >= self.max_waiting:
                raise BadRequest(HTTPStatus.SERVICE_UNAVAILABLE, f"{self.waiting} videos are waiting; try again soon")
            self.waiting += 1
        began = time.perf_counter()
        try:
            with self.model_lock:
                queued = time.perf_counter() - began
                result = analyse(self.model, path, name, self.settings)
        finally:
            with self.count_lock:
                self.waiting -= 1
        return {**result, "queued": round(queued, 3)}

    def labels(self, text: str | None = None) -> dict[str, Any]:
        """The class names, after making them those of ``text`` (comma-separated) if given."""
        if text is not None:
            if self.relabel is None:
                raise BadRequest(HTTPStatus.BAD_REQUEST, "this model's classes are fixed; start laps app with --labels "
                                 "and an open_clip model to change them")
            names = [name.strip() for name in str(text).split(",") if name.strip()]
            if len(names) < 2:
                raise BadRequest(HTTPStatus.BAD_REQUEST, "give at least two class names, separated by commas")
            with self.model_lock:
                self.relabel(names)
        return {"labels": self.model.video_cfg.class_names, "editable": self.relabel is not None}


def _too_large(name: str, limit: int) -> BadRequest:
    return BadRequest(HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                      f"{name}: larger than this server's limit of {limit / 1e6:g} MB (laps app --max-mb)")


def _copy_limited(source, target, length: int | None, limit: int, name: str) -> None:
    """Copy at most ``limit`` bytes from ``source`` to ``target``; more is a 413."""
    copied = 0
    while length is None or copied < length:
        chunk = source.read(min(CHUNK, length - copied) if length is not None else CHUNK)
        if not chunk:
            break
        copied += len(chunk)
        if copied > limit:
            raise _too_large(name, limit)
        target.write(chunk)
    if length is not None and copied < length:
        raise BadRequest(HTTPStatus.BAD_REQUEST, f"{name}: the upload stopped after {copied} of {length} bytes")


class Handler(BaseHTTPRequestHandler):
    """One request, answered by its server's :class:`App`."""

    server: AppServer
    server_version = "laps-app"

    @property
    def app(self) -> App:
        return self.server.app

    def log_message(self, format: str, *args: Any) -> None:
        log.info("%s %s", self.address_string(), format % args)

    def _send(self, status: HTTPStatus, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _json(self, status: HTTPStatus, obj: dict[str, Any]) -> None:
        self._send(status, json.dumps(obj).encode(), "application/json")

    def do_GET(self) -> None:
        if urllib.parse.urlsplit(self.path).path == "/api/labels":
            self._json(HTTPStatus.OK, self.app.labels())
            return
        if urllib.parse.urlsplit(self.path).path != "/":
            self._json(HTTPStatus.NOT_FOUND, {"error": f"no page at {self.path}; the page is at /"})
            return
        page = (resources.files("laps.app") / "page.html").read_bytes()
        self._send(HTTPStatus.OK, page, "text/html; charset=utf-8")

    def do_POST(self) -> None:
        url = urllib.parse.urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        if url.path == "/api/labels":
            self._post_labels(length)
            return
        if url.path != "/api/predict":
            self._drain(length)
            self._json(HTTPStatus.NOT_FOUND, {"error": f"no API at {url.path}; POST videos to /api/predict"})
            return
        work = Path(tempfile.mkdtemp(prefix="laps-app-"))
        try:
            path, name = self._receive(url, length, work)
            self._json(HTTPStatus.OK, self.app.run(path, name))
        except BadRequest as err:
            self._json(err.status, {"error": str(err)})
        except LapsError as err:
            self._json(HTTPStatus.BAD_REQUEST, {"error": str(err)})
        except Exception as err:  # the request fails, the server keeps serving
            log.exception("request failed")
            self._json(HTTPStatus.INTERNAL_SERVER_ERROR, {"error": f"the server failed on this video: {err!r}"})
        finally:
            shutil.rmtree(work, ignore_errors=True)

    def _post_labels(self, length: int) -> None:
        try:
            body = json.loads(self.rfile.read(min(length, 1 << 16)) or b"{}")
            self._json(HTTPStatus.OK, self.app.labels(body.get("labels", "") if isinstance(body, dict) else ""))
        except BadRequest as err:
            self._json(err.status, {"error": str(err)})
        except (LapsError, ValueError) as err:
            self._json(HTTPStatus.BAD_REQUEST, {"error": str(err)})

    def _drain(self, length: int) -> None:
        """Read and drop the body, so that the client, still sending, gets the answer."""
        while length > 0:
            chunk = self.rfile.read(min(CHUNK, length))
            if not chunk:
                return
            length -= len(chunk)

    def _receive(self, url: urllib.parse.SplitResult, length: int, work: Path) -> tuple[str, str]:
        """The video as a local file -> (its path, the name the user knows it by)."""
        source = urllib.parse.parse_qs(url.query).get("source", [""])[0].strip()
        if length:
            name = urllib.parse.unquote(self.headers.get("X-Filename") or "upload")
            if length > self.app.max_bytes:
                self._drain(length)
                raise _too_large(name, self.app.max_bytes)
            path = work / ("video" + Path(name).suffix[:8])
            with open(path, "wb") as f:
                _copy_limited(self.rfile, f, length, self.app.max_bytes, name)
            return str(path), name
        if not source and self.headers.get("X-Filename"):  # a file of no bytes
            name = urllib.parse.unquote(self.headers["X-Filename"])
            raise BadRequest(HTTPStatus.BAD_REQUEST, f"{name}: empty file (0 bytes), nothing to classify")
        if not source:
            raise BadRequest(HTTPStatus.BAD_REQUEST, "nothing to classify: send a video file, or ?source=PATH_OR_URL")
        if urllib.parse.urlsplit(source).scheme in ("http", "https"):
            path = work / ("video" + Path(urllib.parse.urlsplit(source).path).suffix[:8])
            try:
                with urllib.request.urlopen(source, timeout=30) as response, open(path, "wb") as f:
                    _copy_limited(response, f, None, self.app.max_bytes, source)
            except OSError as err:
                raise BadRequest(HTTPStatus.BAD_REQUEST, f"{source}: cannot download it ({err})") from None
            return str(path), source
        if os.path.isdir(source):
            raise BadRequest(HTTPStatus.BAD_REQUEST, f"{source}: a folder, not a video; give the path of one video file")
        if not os.path.isfile(source):
            raise BadRequest(HTTPStatus.BAD_REQUEST, f"{source}: no such file on the server (give a path or an http(s) URL)")
        return source, source


class AppServer(ThreadingHTTPServer):
    """A threaded HTTP server whose requests go to ``app`` (set once the port is bound)."""

    daemon_threads = True
    app: App


def make_server(app: App | None, host: str = "127.0.0.1", port: int = 7860) -> AppServer:
    """A threaded HTTP server bound to ``host:port`` (port 0: any free one) for ``app`` (``None``:
    set ``server.app`` before serving, e.g. to bind the port before a slow model load). A port in
    use or an address that cannot be bound raises :class:`ConfigError` in one line."""
    try:
        server = AppServer((host, port), Handler)
    except OSError as err:
        if err.errno == errno.EADDRINUSE:
            raise ConfigError(f"port {port} on {host} is in use (another laps app?); pick another with --port, "
                              "or --port 0 for any free one") from None
        raise ConfigError(f"cannot serve on {host}:{port}: {err.strerror or err}; check --host and --port") from None
    if app is not None:
        server.app = app
    return server
