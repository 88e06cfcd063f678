"""``laps app``: the page, the API behind it, bad uploads, queueing and binding."""

import base64
import functools
import http.server
import io
import json
import socket
import threading
import urllib.error
import urllib.parse
import urllib.request

import numpy as np
import pytest
from PIL import Image

from laps.cli import build_parser, main
from tests.app.helpers import CLASSES, colour_video


def post(base, body=b"", name="video.mp4", source=None):
    """POST to /api/predict -> (status, JSON answer)."""
    url = f"{base}/api/predict" + (f"?source={urllib.parse.quote(source)}" if source else "")
    request = urllib.request.Request(url, data=body, method="POST", headers={"X-Filename": name})
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def test_the_page_is_served_at_the_root(serve):
    base = serve()
    with urllib.request.urlopen(base + "/") as response:
        page = response.read().decode()
    assert 'id="drop"' in page and "/api/predict" in page
    with pytest.raises(urllib.error.HTTPError, match="404"):
        urllib.request.urlopen(base + "/elsewhere")


def test_a_short_upload_gets_its_top_classes_and_no_timeline(serve, tmp_path):
    video = colour_video(tmp_path / "blue.mp4", [(2, 3.0)])
    status, result = post(serve(), video.read_bytes(), "blue.mp4")
    assert status == 200, result
    assert [t["label"] for t in result["top"]][0] == "blue" and len(result["top"]) == 5
    assert sorted(t["label"] for t in result["top"]) == sorted(CLASSES)
    assert result["timeline"] is None and result["name"] == "blue.mp4" and result["duration"] == pytest.approx(3, abs=0.2)


def test_a_long_video_by_path_gets_a_timeline_with_thumbnails(serve, tmp_path):
    video = colour_video(tmp_path / "long.mp4", [(0, 6.0), (1, 8.0), (3, 6.0)])
    status, result = post(serve(), source=str(video))
    assert status == 200, result
    timeline = result["timeline"]
    assert [s["label"] for s in timeline["segments"]] == ["red", "green", "yellow"]
    assert [round(s["end"]) for s in timeline["segments"]][:2] == [6, 14]
    assert timeline["png"].startswith("data:image/png;base64,iVBOR")
    assert all(s["thumbnail"].startswith("data:image/png;base64,") for s in timeline["segments"])
    assert [t["label"] for t in result["top"]] == ["green", "red", "yellow"]  # the share of time, not one clip
    assert sum(t["prob"] for t in result["top"]) == pytest.approx(1)
    plot = np.asarray(Image.open(io.BytesIO(base64.b64decode(timeline["png"].split(",")[1]))).convert("L"))
    blank_top = int(np.argmin((plot > 250).all(axis=1)))
    assert blank_top < 0.05 * len(plot), f"{blank_top} blank rows above the thumbnails"


def test_a_url_is_downloaded_and_classified(serve, tmp_path):
    colour_video(tmp_path / "green.mp4", [(1, 3.0)])
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    handler.log_message = lambda *args: None
    files = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=files.serve_forever, daemon=True).start()
    try:
        status, result = post(serve(), source=f"http://127.0.0.1:{files.server_address[1]}/green.mp4")
    finally:
        files.shutdown()
        files.server_close()
    assert status == 200 and result["top"][0]["label"] == "green"


def test_bad_uploads_get_a_clear_message_and_the_server_keeps_serving(serve, tmp_path):
    base = serve(max_bytes=200_000)
    good = colour_video(tmp_path / "red.mp4", [(0, 3.0)]).read_bytes()
    image = io.BytesIO()
    Image.new("RGB", (32, 32), (200, 30, 30)).save(image, format="PNG")
    cases = {
        "notes.txt": (b"not a video at all\n" * 100, 400, "notes.txt: a text file, not a video"),
        "photo.png": (image.getvalue(), 400, "photo.png: a still image, not a video"),
        "half.mp4": (good[: len(good) // 2], 400, f"half.mp4: truncated: the file ends at byte {len(good) // 2:,}"),
        "huge.mp4": (good + bytes(300_000), 413, "larger than this server's limit of 0.2 MB"),
        "empty.mp4": (b"", 400, "empty.mp4: empty file (0 bytes)"),
        "missing": (None, 400, "no such file on the server"),
        "folder": (None, 400, "a folder, not a video; give the path of one video file"),
    }
    for name, (body, code, message) in cases.items():
        source = str(tmp_path / "absent.mp4") if name == "missing" else str(tmp_path) if name == "folder" else None
        status, result = post(base, body or b"", name, source=source)
        assert (status, message in result.get("error", "")) == (code, True), (name, result)
        assert name in result["error"] or body is None or not body
        assert "Errno" not in result["error"] and "laps data check" not in result["error"]
        status, result = post(base, good, "red.mp4")
        assert status == 200 and result["top"][0]["label"] == "red"


@pytest.mark.slow  # requests that wait on each other
def test_requests_at_once_queue_for_the_model(serve, tmp_path):
    base = serve(delay=0.3)
    videos = [colour_video(tmp_path / f"{k}.mp4", [(k, 2.0)]).read_bytes() for k in range(4)]
    results = [None] * 4
    start = threading.Barrier(4)

    def send(k):
        start.wait()
        results[k] = post(base, videos[k], f"{k}.mp4")

    threads = [threading.Thread(target=send, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [(status, result["top"][0]["label"]) for status, result in results] == [(200, c) for c in CLASSES[:4]]
    waits = sorted(result["queued"] for _, result in results)
    assert waits[-1] >= 0.6  # the last in line waited for at least two others (0.3 s each)


def test_the_app_binds_to_this_machine_unless_told(serve):
    args = build_parser().parse_args(["app", "--checkpoint", "x"])
    assert (args.host, args.port) == ("127.0.0.1", 7860)
    assert serve().startswith("http://127.0.0.1:")


def test_flags_the_decoding_cannot_use_are_refused_before_loading(capsys):
    from laps.cli import main

    assert main(["app", "--checkpoint", "no/such/run", "--switch", "-1"]) == 2
    assert "--switch >= 0" in capsys.readouterr().err


def test_a_port_in_use_is_one_line_and_exit_2(tmp_path, capsys):
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    port = busy.getsockname()[1]
    try:
        code = main(["app", "--checkpoint", str(tmp_path / "not_loaded_yet"), "--port", str(port)])
    finally:
        busy.close()
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err
    assert f"port {port} on 127.0.0.1 is in use" in err and "--port" in err
