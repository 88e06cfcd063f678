"""``laps predict/eval --labels``: zero-shot commands print open_clip's numbers on a still video."""

import json
from pathlib import Path

import av
import numpy as np
import pytest
import torch

from laps.cli import main
from laps.data.encoding import write_video
from tests.helpers import TINY_OPEN_CLIP, save_open_clip

open_clip = pytest.importorskip("open_clip")
pytestmark = pytest.mark.slow
LABELS = ["dancing", "cooking", "juggling"]


@pytest.fixture(scope="module")
def clip_folder(tmp_path_factory):
    return save_open_clip(TINY_OPEN_CLIP, tmp_path_factory.mktemp("open_clip") / "clip")


def still_video(path, colour) -> np.ndarray:
    """A flat-colour video (any resize or crop of it is the same image); returns its decoded RGB colour."""
    frames = np.zeros((16, 64, 64, 3), np.uint8)
    frames[...] = colour
    write_video(path, frames)
    with av.open(str(path)) as container:
        decoded = next(container.decode(video=0)).to_ndarray(format="rgb24")
    return decoded.reshape(-1, 3).mean(0)


def open_clip_probs(folder, rgb: np.ndarray) -> torch.Tensor:
    model = open_clip.create_model(f"local-dir:{folder}").eval()
    tokenizer = open_clip.get_tokenizer(f"local-dir:{folder}")
    from laps.openvocab import VIDEO_TEMPLATES

    mean, std = torch.tensor(open_clip.OPENAI_DATASET_MEAN), torch.tensor(open_clip.OPENAI_DATASET_STD)
    pixel = (torch.tensor(rgb, dtype=torch.float32) / 255 - mean) / std
    image = pixel.view(1, 3, 1, 1).expand(1, 3, 32, 32)
    with torch.no_grad():
        weights = open_clip.build_zero_shot_classifier(model, tokenizer, LABELS, VIDEO_TEMPLATES)
        return (model.logit_scale.exp() * model.encode_image(image, normalize=True) @ weights).softmax(-1)[0]


@pytest.mark.parametrize("temporal", ["base2d", "la"])
def test_predict_labels_json_prints_open_clips_probabilities(clip_folder, tmp_path, capsys, temporal):
    rgb = still_video(tmp_path / "still.mp4", (200, 120, 40))
    code = main(["predict", "--checkpoint", f"local-dir:{clip_folder}", "--labels", ",".join(LABELS), "--json",
                 "--temporal", temporal, "--num-frames", "4", "--device", "cpu", str(tmp_path / "still.mp4")])
    assert code == 0
    top = {t["label"]: t["prob"] for t in json.loads(capsys.readouterr().out)[0]["top"]}
    expected = open_clip_probs(clip_folder, rgb)
    assert [top[name] for name in LABELS] == pytest.approx(expected.tolist(), abs=1e-4)


def test_eval_labels_reports_top1_without_training(clip_folder, tmp_path, capsys):
    for index, colour in enumerate([(200, 120, 40), (20, 60, 220)]):
        still_video(tmp_path / f"v{index}.mp4", colour)
    (tmp_path / "list.txt").write_text("v0.mp4 0\nv1.mp4 2\n")
    (tmp_path / "labels.txt").write_text("\n".join(LABELS) + "\n")
    code = main(["eval", "--checkpoint", str(clip_folder), "--labels", str(tmp_path / "labels.txt"),
                 "--data-root", str(tmp_path), "--list", "list.txt", "--output", str(tmp_path / "eval"),
                 "--num-frames", "4", "--workers", "0", "--device", "cpu"])
    assert code == 0
    summary = json.loads((tmp_path / "eval" / "eval.json").read_text())
    assert summary["num_videos"] == 2 and summary["top5"] == 1.0
    assert "top1" in capsys.readouterr().out


def test_labels_without_text_tower_and_flags_without_labels_are_refused(tmp_path, capsys):
    video = str(tmp_path / "x.mp4")
    still_video(video, (10, 20, 30))  # predict judges its inputs before the model
    assert main(["predict", "--checkpoint", "vit_base_patch14_dinov2", "--labels", "a,b", video]) == 2
    assert "no text tower" in capsys.readouterr().err
    assert main(["predict", "--checkpoint", str(tmp_path), "--temporal", "la", video]) == 2
    assert "add --labels" in capsys.readouterr().err


def test_features_joint_and_search_rank_videos_by_open_clips_cosine(clip_folder, tmp_path, capsys):
    colours = {"a.mp4": (200, 120, 40), "b.mp4": (20, 60, 220), "c.mp4": (90, 200, 90)}
    (tmp_path / "vids").mkdir()
    rgb = {name: still_video(tmp_path / "vids" / name, colour) for name, colour in colours.items()}
    assert main(["features", "--checkpoint", f"local-dir:{clip_folder}", "--space", "joint", "--temporal", "base2d", "--num-frames", "2",
                 "--output", str(tmp_path / "feats"), "--workers", "0", "--device", "cpu", str(tmp_path / "vids")]) == 0
    capsys.readouterr()
    assert main(["search", str(tmp_path / "feats"), "a person juggling", "--model", str(clip_folder), "--json"]) == 0
    ranked = json.loads(capsys.readouterr().out)
    model = open_clip.create_model(f"local-dir:{clip_folder}").eval()
    mean, std = torch.tensor(open_clip.OPENAI_DATASET_MEAN), torch.tensor(open_clip.OPENAI_DATASET_STD)
    with torch.no_grad():
        text = model.encode_text(open_clip.get_tokenizer(f"local-dir:{clip_folder}")(["a person juggling"]), normalize=True)
        expected = {}
        for name, value in rgb.items():
            image = ((torch.tensor(value, dtype=torch.float32) / 255 - mean) / std).view(1, 3, 1, 1).expand(1, 3, 32, 32)
            expected[name] = float(model.encode_image(image, normalize=True) @ text.T)
    assert [Path(item["video"]).name for item in ranked] == sorted(expected, key=lambda n: -expected[n])
    assert {Path(item["video"]).name: item["score"] for item in ranked} == pytest.approx(expected, abs=1e-4)
