"""``laps app --labels``: the page's labels box makes a zero-shot model classify other names."""

import json
import threading
import urllib.error
import urllib.request

import numpy as np
import pytest

from laps.app.analyse import Settings
from laps.app.server import App, make_server
from laps.data.encoding import write_video
from laps.openvocab import load_open_clip, relabel, zero_shot
from tests.helpers import TINY_OPEN_CLIP, save_open_clip

pytest.importorskip("open_clip")
pytestmark = pytest.mark.slow  # a server in a thread


def call(base, path, body=None):
    data = None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
    request = urllib.request.Request(base + path, data=data, method="GET" if data is None else "POST",
                                     headers={"X-Filename": "still.mp4"})
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


@pytest.fixture
def zero_shot_app(tmp_path):
    clip = load_open_clip(save_open_clip(TINY_OPEN_CLIP, tmp_path / "clip"))
    model = zero_shot(clip, ["dancing", "cooking"], num_frames=2)
    server = make_server(App(model, Settings(views="1x1"), 10_000_000,
                             relabel=lambda names: relabel(model, clip, names)), port=0)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", model, clip
    server.shutdown()
    server.server_close()


def test_new_labels_give_the_zero_shot_model_of_those_names(zero_shot_app, tmp_path):
    base, model, clip = zero_shot_app
    assert call(base, "/api/labels") == (200, {"labels": ["dancing", "cooking"], "editable": True})
    assert call(base, "/api/labels", {"labels": "juggling, swimming , surfing"})[1]["labels"] == \
        ["juggling", "swimming", "surfing"]
    fresh = zero_shot(clip, ["juggling", "swimming", "surfing"], num_frames=2)
    assert model.backbone.get_classifier().classifier.weight.equal(fresh.backbone.get_classifier().classifier.weight)
    frames = np.full((8, 64, 64, 3), (200, 120, 40), np.uint8)
    write_video(tmp_path / "still.mp4", frames)
    status, answer = call(base, "/api/predict", (tmp_path / "still.mp4").read_bytes())
    assert status == 200 and {t["label"] for t in answer["top"]} == {"juggling", "swimming", "surfing"}
    assert call(base, "/api/labels", {"labels": "only one"})[0] == 400


def test_a_trained_models_labels_are_fixed(serve):
    base = serve()
    assert call(base, "/api/labels")[1]["editable"] is False
    status, answer = call(base, "/api/labels", {"labels": "a, b"})
    assert status == 400 and "--labels" in answer["error"]
