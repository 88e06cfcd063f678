"""Fixtures of the ``laps app`` tests: a server in a thread of the test process, scoring with a colour oracle."""

import threading

import pytest

from laps.app.analyse import Settings
from laps.app.server import App, make_server
from tests.app.helpers import oracle_model


@pytest.fixture
def serve(tmp_path):
    """``serve(max_bytes=..., delay=...)`` -> the base URL of a running app; stopped after the test."""
    servers = []

    def start(max_bytes: int = 10_000_000, delay: float = 0.0) -> str:
        app = App(oracle_model(tmp_path, delay), Settings(views="1x1", long_after=8.0), max_bytes)
        server = make_server(app, port=0)
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()
