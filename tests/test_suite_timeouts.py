"""No test can hang the suite: a stuck test fails with every thread's stack and the run ends."""

import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import QUICK_TIMEOUT_S

ROOT = Path(__file__).resolve().parents[1]

STUCK = '''
import ctypes
import threading

import pytest


@pytest.mark.timeout(3)
def test_waits_forever():
    threading.Thread(target=threading.Event().wait, name="helper-waiting", daemon=True).start()
    threading.Event().wait()


def test_holds_the_gil():
    ctypes.PyDLL(None).sleep(60)  # libc's sleep, called without releasing the GIL
'''


def test_a_quick_test_gets_the_short_timeout(request):
    assert request.node.get_closest_marker("timeout").args == (QUICK_TIMEOUT_S,)


@pytest.mark.slow
def test_a_slow_test_gets_the_suites_timeout(request):
    assert request.node.get_closest_marker("timeout") is None
    assert float(request.config.getini("timeout")) > QUICK_TIMEOUT_S


def _pytest(path: Path, *options: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pytest", "-c", str(ROOT / "pyproject.toml"), "--rootdir", str(path.parent),
                           "-p", "no:xdist", *options, str(path)], check=False, capture_output=True, text=True,
                          timeout=120)


@pytest.mark.slow
def test_a_stuck_test_fails_printing_every_threads_stack(tmp_path):
    path = tmp_path / "test_stuck.py"
    path.write_text(STUCK)
    done = _pytest(path, "-k", "waits_forever")
    assert done.returncode != 0
    assert "Timeout" in done.stdout and "Stack of MainThread" in done.stdout, done.stdout
    assert "Stack of helper-waiting" in done.stdout and "in test_waits_forever" in done.stdout
    # a test holding the GIL starves pytest-timeout's thread: faulthandler dumps the stacks and exits
    done = _pytest(path, "-k", "holds_the_gil", "-o", "faulthandler_timeout=3")
    assert done.returncode != 0
    assert "Timeout (0:00:03)!" in done.stderr and "test_holds_the_gil" in done.stderr, done.stderr
