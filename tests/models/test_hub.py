"""Sharing: save_pretrained / from_pretrained (folder, run directory, Hub id offline) give the same
logits; push_to_hub uploads the files with a model card that renders."""

import json
import os
import subprocess
import sys

import pytest
import torch
from huggingface_hub import ModelCard

import laps
from laps.errors import CheckpointError, ConfigError
from laps.models import hub

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
    assert loaded.shared_config["classes"] == classes and not loaded.training
    assert (loaded.temporal, loaded.num_frames, loaded.levels, loaded.fold_div) == \
        (model.temporal, model.num_frames, model.levels, model.fold_div)


def test_a_run_directory_loads_with_its_classes_and_normalisation(tiny_data, tmp_path):
    from laps.engine.inference import load_trained
    from laps.engine.trainer import train
    from tests.helpers import tiny_config

    run = tmp_path / "run"
    train(tiny_config(tiny_data, run, **{"optim.epochs": 1, "data.norm": "imagenet"}))
    model = laps.from_pretrained(run)
    reference = load_trained(run, "cpu")
    clips = torch.randn(1, 4, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(model(clips), reference.model(clips))
    config = model.shared_config
    assert config["classes"] == reference.classes and config["sampling_rate"] == 2
    assert config["mean"] == pytest.approx([0.485, 0.456, 0.406]) and config["std"] == pytest.approx([0.229, 0.224, 0.225])
    model.save_pretrained(tmp_path / "shared", classes=config["classes"], mean=config["mean"], std=config["std"])
    again = laps.from_pretrained(tmp_path / "shared")
    with torch.no_grad():
        assert torch.equal(again(clips), model(clips))


def _fill_hub_cache(cache, repo_id, folder):
    """Lay out ``folder``'s files as huggingface_hub's cache holds a downloaded snapshot."""
    revision = "0" * 40
    repo = cache / f"models--{repo_id.replace('/', '--')}"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(revision)
    snapshot = repo / "snapshots" / revision
    snapshot.mkdir(parents=True)
    for path in folder.iterdir():
        (snapshot / path.name).write_bytes(path.read_bytes())


def test_a_hub_id_loads_from_the_cache_in_offline_mode(tmp_path):
    model = next(_models()).eval()
    model.save_pretrained(tmp_path / "shared")
    _fill_hub_cache(tmp_path / "cache", "someone/laps-tiny", tmp_path / "shared")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": str(tmp_path / "cache")}
    script = ("import laps, torch; torch.manual_seed(0); x = torch.randn(1, 4, 3, 32, 32); "
              "m = laps.from_pretrained('someone/laps-tiny'); torch.save(m(x).detach(), {out!r})")
    subprocess.run([sys.executable, "-c", script.format(out=str(tmp_path / "hub.pt"))], env=env, check=True)
    torch.manual_seed(0)
    with torch.no_grad():
        assert torch.equal(torch.load(tmp_path / "hub.pt"), model(torch.randn(1, 4, 3, 32, 32)))
    missing = subprocess.run([sys.executable, "-c", "import laps; laps.from_pretrained('someone/absent')"], env=env,
                             capture_output=True, text=True)
    assert "not in the local Hugging Face cache" in missing.stderr


def test_push_to_hub_uploads_the_files_and_a_model_card(tiny_data, tmp_path, monkeypatch):
    from huggingface_hub import HfApi

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
    model = laps.from_pretrained(run)
    assert laps.push_to_hub(model, "someone/laps-tiny", run_dir=run).endswith("/commit/abc")
    assert {"config.json", "model.safetensors", "README.md"} <= set(uploaded)
    card = ModelCard(uploaded["README.md"].decode())
    assert card.data.library_name == "laps" and card.data.pipeline_tag == "video-classification"
    summary = json.loads((run / "summary.json").read_text())
    assert f"| best_val_top1 | {100 * summary['best_val_top1']:.2f}% |" in card.text
    assert f"| GFLOPs per view | {summary['gflops_per_view']:.3f} |" in card.text
    assert "## Intended use" in card.text and "optim:" in card.text  # the training config
    assert json.loads(uploaded["config.json"])["classes"] == model.shared_config["classes"]


def test_clear_errors():
    with pytest.raises(CheckpointError, match="neither a folder"):
        laps.from_pretrained("./no/such/thing")
    image = __import__("timm").create_model("vit_tiny_patch16_224", img_size=32, patch_size=16, depth=1)
    with pytest.raises(ConfigError, match="build it with laps.create_model"):
        hub.sharing_config(laps.lapsify(image, num_frames=2))
