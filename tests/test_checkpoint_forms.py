"""Every command that takes ``--checkpoint`` (eval, predict, predict --timeline, export) runs on each
form of a trained model: a run directory, a save_pretrained folder, a weights file and a Hugging Face
Hub id (from a local cache, offline), and all four give the same results, fed as the run was trained."""

import json

import numpy as np
import pytest

import laps
from laps.cli import main
from laps.data.encoding import write_video
from laps.data.synthetic import synthetic_clip
from laps.engine.trainer import train
from tests.helpers import fill_hub_cache, tiny_config

FORMS = ("run", "shared", "file", "hub")
HUB_ID = "someone/laps-tiny"
#: the run's settings, unlike the defaults, so that a form that lost them gives other results
RUN = {"optim.epochs": 1, "data.norm": "imagenet", "data.sampling_rate": 1}


pytestmark = pytest.mark.slow  # every test here uses a trained run (laps train)


@pytest.fixture(scope="module")
def trained(tiny_data, tmp_path_factory):
    """A one-epoch run, the same model saved with save_pretrained, and a Hub cache holding that folder."""
    root = tmp_path_factory.mktemp("forms")
    train(tiny_config(tiny_data, root / "run", **RUN))
    laps.from_pretrained(root / "run").save_pretrained(root / "shared")
    fill_hub_cache(root / "hub_cache", HUB_ID, root / "shared")
    write_video(root / "long.mp4", np.concatenate([synthetic_clip(k, seed=k, num_frames=16, size=32) for k in (1, 2)]),
                fps=8)
    return root


@pytest.fixture
def checkpoints(trained, monkeypatch):
    """``--checkpoint`` value of each form, with the Hub offline and its cache at the test's folder."""
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(trained / "hub_cache"))
    return {"run": str(trained / "run"), "shared": str(trained / "shared"),
            "file": str(trained / "shared" / "model.safetensors"), "hub": HUB_ID}


def test_eval_runs_on_every_form(checkpoints, tiny_data, tmp_path):
    results = {}
    for form, checkpoint in checkpoints.items():
        assert main(["eval", "--checkpoint", checkpoint, "--data-root", str(tiny_data), "--list",
                     str(tiny_data / "val.txt"), "--views", "1x3", "--output", str(tmp_path / form),
                     "--workers", "0"]) == 0, form
        results[form] = (json.loads((tmp_path / form / "eval.json").read_text()),
                         (tmp_path / form / "predictions.csv").read_text())
    assert results["run"][0]["num_videos"] == 10
    assert all(results[form] == results["run"] for form in FORMS), {f: r[0]["top1"] for f, r in results.items()}


def test_predict_runs_on_every_form(checkpoints, tiny_data, capsys):
    video = str(tiny_data / "videos" / "drifting_left" / "drifting_left_0002.mp4")
    printed = {}
    for form, checkpoint in checkpoints.items():
        capsys.readouterr()
        assert main(["predict", "--checkpoint", checkpoint, "--json", "--top-k", "10", video]) == 0, form
        printed[form] = json.loads(capsys.readouterr().out)
    top = printed["run"][0]["top"]
    assert len(top) == 10 and sum(t["prob"] for t in top) == pytest.approx(1.0, abs=1e-5)
    assert all(printed[form] == printed["run"] for form in FORMS)


def test_the_timeline_runs_on_every_form(checkpoints, trained, tmp_path):
    reports = {}
    for form, checkpoint in checkpoints.items():
        out = tmp_path / form
        assert main(["predict", "--checkpoint", checkpoint, "--timeline", "--window", "1", "--stride", "1",
                     "--output", str(out), str(trained / "long.mp4")]) == 0, form
        reports[form] = json.loads((out / "timeline.json").read_text())
    assert len(reports["run"]["scores"]["start"]) == 4
    assert all(reports[form] == reports["run"] for form in FORMS)


@pytest.mark.slow  # four ONNX exports: a minute on 2 cores
def test_export_runs_on_every_form_with_the_run_s_input_settings(checkpoints, tmp_path, capsys):
    import onnx

    metadata = {}
    for form, checkpoint in checkpoints.items():
        path = tmp_path / f"{form}.onnx"
        assert main(["export", "--checkpoint", checkpoint, "--output", str(path)]) == 0, form
        assert json.loads(capsys.readouterr().out)["passed"]
        metadata[form] = {p.key: json.loads(p.value) for p in onnx.load(str(path)).metadata_props}
    run = metadata["run"]
    assert run["mean"] == pytest.approx([0.485, 0.456, 0.406]) and run["std"] == pytest.approx([0.229, 0.224, 0.225])
    assert (run["interpolation"], run["sampling_rate"], run["img_size"], len(run["classes"])) == ("bicubic", 1, 32, 10)
    assert all(metadata[form] == run for form in FORMS)
