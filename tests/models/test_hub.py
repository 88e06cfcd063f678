"""Sharing: save_pretrained / from_pretrained (folder, run directory, Hub id offline) give the same
logits; config.json carries the normalisation and interpolation of the backbone's timm weights;
push_to_hub uploads the files with a model card that renders."""

import json
import os
import subprocess
import sys

import pytest
import torch
from huggingface_hub import ModelCard

import laps
from laps.errors import CheckpointError, ConfigError
from laps.models import sharing
from tests.helpers import fill_hub_cache

pytestmark = pytest.mark.slow  # save/load round trips of several models, and subprocesses


def _models():
    yield laps.create_model("vit_tiny_patch16_224", temporal="laps", num_frames=4, num_classes=3, img_size=32,
                            patch_size=8, depth=2, levels=[1, None], global_pool="avg")
    yield laps.create_model("visformer_tiny", temporal="ps", num_frames=2, num_classes=5, img_size=32, fold_div=8)


@pytest.mark.parametrize("model", list(_models()), ids=["vit", "visformer"])
def test_save_then_from_pretrained_gives_identical_logits(model, tmp_path):
    model.eval()
    with torch.no_grad():
        for p in model.parameters():  # weights unlike any fresh initialisation
            p.add_(torch.randn_like(p) * 0.01)
    classes = [f"c{i}" for i in range(model.num_classes)]
    model.save_pretrained(tmp_path / "shared", classes=classes)
    assert sorted(p.name for p in (tmp_path / "shared").iterdir()) == ["config.json", "model.safetensors"]
    loaded = laps.from_pretrained(tmp_path / "shared")
    clips = torch.randn(2, model.num_frames, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(loaded(clips), model(clips))
    assert loaded.video_cfg == model.video_cfg.updated(classes=classes) and not loaded.training
    assert (loaded.temporal, loaded.num_frames, loaded.levels, loaded.fold_div) == \
        (model.temporal, model.num_frames, model.levels, model.fold_div)


def test_a_run_directory_loads_with_its_classes_and_normalisation(tiny_data, tmp_path):
    from safetensors.torch import load_file

    from laps.engine.trainer import train
    from tests.helpers import tiny_config

    run = tmp_path / "run"
    train(tiny_config(tiny_data, run, **{"optim.epochs": 1, "data.norm": "imagenet"}))
    model = laps.from_pretrained(run)
    weights = load_file(run / "model.safetensors")
    assert all(torch.equal(weights[key], value) for key, value in model.backbone.state_dict().items())
    config = model.video_cfg
    assert config.to_dict() == json.loads((run / "config.json").read_text())
    assert list(config.classes) == json.loads((tiny_data / "classes.json").read_text())  # the data set's 10 names
    assert (config.sampling_rate, config.sampling, config.img_size) == (2, "dense", 32)
    assert config.mean == pytest.approx([0.485, 0.456, 0.406]) and config.std == pytest.approx([0.229, 0.224, 0.225])
    assert config.interpolation == "bicubic"  # vit_tiny's timm weights
    model.save_pretrained(tmp_path / "shared")  # what it was loaded with is kept
    again = laps.from_pretrained(tmp_path / "shared")
    assert again.video_cfg == config
    clips = torch.randn(1, 4, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(again(clips), model(clips))


def test_config_json_carries_the_normalisation_and_interpolation_of_the_tag(tmp_path):
    # a CLIP tag at a tiny size: the weights' pretrained_cfg, not ImageNet's statistics, and bicubic
    model = laps.create_model("vit_base_patch16_clip_224.openai", num_frames=2, num_classes=3, img_size=32,
                              patch_size=16, depth=1, embed_dim=64, num_heads=2)
    model.save_pretrained(tmp_path / "clip")
    config = json.loads((tmp_path / "clip" / "config.json").read_text())
    assert config["mean"] == pytest.approx([0.48145466, 0.4578275, 0.40821073])
    assert config["std"] == pytest.approx([0.26862954, 0.26130258, 0.27577711])
    assert config["interpolation"] == "bicubic"
    model.save_pretrained(tmp_path / "mine", mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25), interpolation="bilinear")
    mine = laps.from_pretrained(tmp_path / "mine").video_cfg
    assert (mine.mean, mine.std, mine.interpolation) == ((0.5,) * 3, (0.25,) * 3, "bilinear")


def test_a_hub_id_loads_from_the_cache_in_offline_mode(tmp_path):
    model = next(_models()).eval()
    model.save_pretrained(tmp_path / "shared")
    fill_hub_cache(tmp_path / "cache", "someone/laps-tiny", tmp_path / "shared")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": str(tmp_path / "cache")}
    script = ("import laps, torch; torch.manual_seed(0); x = torch.randn(1, 4, 3, 32, 32); "
              "m = laps.from_pretrained('someone/laps-tiny'); torch.save(m(x).detach(), {out!r}); "
              "laps.from_pretrained('someone/absent')")  # then an id that is not in the cache
    done = subprocess.run([sys.executable, "-c", script.format(out=str(tmp_path / "hub.pt"))], env=env,
                          capture_output=True, text=True)
    torch.manual_seed(0)
    with torch.no_grad():
        assert torch.equal(torch.load(tmp_path / "hub.pt"), model(torch.randn(1, 4, 3, 32, 32)))
    assert done.returncode == 1 and "not in the local Hugging Face cache" in done.stderr.splitlines()[-1], done.stderr


def test_push_to_hub_uploads_the_files_and_a_model_card(tiny_data, tmp_path, monkeypatch):
    from huggingface_hub import HfApi

    from laps.engine.publish import push_run
    from laps.engine.trainer import train
    from tests.helpers import tiny_config

    run = tmp_path / "run"
    train(tiny_config(tiny_data, run, **{"optim.epochs": 1}))
    uploaded = {}

    def upload_folder(self, repo_id, folder_path, commit_message):
        uploaded.update({p: open(os.path.join(folder_path, p), "rb").read() for p in os.listdir(folder_path)})
        uploaded["repo_id"] = repo_id
        return "https://huggingface.co/someone/laps-tiny/commit/abc"

    monkeypatch.setattr(HfApi, "create_repo", lambda self, repo_id, private, exist_ok: None)
    monkeypatch.setattr(HfApi, "upload_folder", upload_folder)
    assert push_run(run, "someone/laps-tiny").endswith("/commit/abc")
    assert {"config.json", "model.safetensors", "README.md"} <= set(uploaded)
    card = ModelCard(uploaded["README.md"].decode())
    assert card.data.library_name == "laps" and card.data.pipeline_tag == "video-classification"
    summary = json.loads((run / "summary.json").read_text())
    assert f"| best_val_top1 | {100 * summary['best_val_top1']:.2f}% |" in card.text
    assert f"| GFLOPs per view | {summary['gflops_per_view']:.3f} |" in card.text
    assert "## Intended use" in card.text and "optim:" in card.text  # the training config
    assert json.loads(uploaded["config.json"]) == json.loads((run / "config.json").read_text())
    from safetensors.torch import load, load_file

    sent, best = load(uploaded["model.safetensors"]), load_file(run / "model.safetensors")
    assert sent.keys() == best.keys() and all(torch.equal(sent[key], best[key]) for key in best)


def test_clear_errors(tmp_path):
    with pytest.raises(CheckpointError, match="no such run directory, folder or weights file: ./no/such/thing"):
        laps.from_pretrained("./no/such/thing")
    with pytest.raises(CheckpointError, match="holds no model.safetensors"):
        laps.from_pretrained(tmp_path)
    image = __import__("timm").create_model("vit_tiny_patch16_224", img_size=32, patch_size=16, depth=1)
    with pytest.raises(ConfigError, match="build it with laps.create_model"):
        sharing.model_config(laps.lapsify(image, num_frames=2))


def test_a_clip_run_is_trained_fed_and_saved_with_clip_s_settings(tiny_data, tmp_path):
    from torchvision.transforms.v2 import InterpolationMode

    from laps.data.transforms import TestTransform
    from laps.engine import checkpoint as ckpt
    from laps.engine.builders import build_dataset, build_model, config_feed, read_split
    from tests.helpers import tiny_config

    config = tiny_config(tiny_data, tmp_path, **{"model.backbone": "vit_base_patch16_clip_224.openai",
                                                 "model.embed_dim": 64, "model.num_heads": 2})
    records, root = read_split(config, "train_list")
    train_set = build_dataset(config, records, root, train=True)
    assert train_set.transform.interpolation == InterpolationMode.BICUBIC
    std = 1 / (255 * train_set.normalize.scale.flatten())
    assert (-train_set.normalize.shift.flatten() * std).tolist() == pytest.approx([0.48145466, 0.4578275, 0.40821073])
    saved = ckpt.model_config(build_model(config, 10, pretrained=False), config_feed(config), [f"c{i}" for i in range(10)])
    assert saved.std == pytest.approx([0.26862954, 0.26130258, 0.27577711]) and saved.interpolation == "bicubic"
    frames = torch.randint(0, 256, (2, 40, 40, 3), dtype=torch.uint8)
    assert not torch.equal(TestTransform(16, interpolation="bilinear")(frames), TestTransform(16)(frames))
    with pytest.raises(ConfigError, match="unknown interpolation 'cubic'"):
        TestTransform(16, interpolation="cubic")
