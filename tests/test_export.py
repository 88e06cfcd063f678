"""Export: every variant of both backbone families exports to .pt2 and .onnx with a dynamic batch and
matches the eager model; a clip of another length is refused with a clear message."""

import json

import pytest
import torch

import laps
from laps.cli import main
from laps.errors import ConfigError, ShapeError
from laps.export import check_export, example_clips, export, load_exported

pytestmark = pytest.mark.slow  # torch.export and ONNX export of every variant

FAMILIES = {
    "vit": ("vit_tiny_patch16_224", {"img_size": 32, "patch_size": 8, "depth": 2}),
    # one block a stage: two attention blocks (stages 2 and 3), both leap levels of T=4
    "visformer": ("visformer_tiny", {"img_size": 32, "depth": (1, 1, 1), "embed_dim": 48, "num_heads": 2}),
}


def _model(family, temporal, num_frames=4):
    name, kwargs = FAMILIES[family]
    return laps.create_model(name, temporal=temporal, num_frames=num_frames, num_classes=5, **kwargs).eval()


def _check(model, path):
    export(model, path)
    report = check_export(model, path)
    assert report["passed"] and report["batch_sizes"] == [1, 3]
    assert report["max_abs_diff"] <= 1e-4 * max(1.0, report["max_abs_logit"])
    return report


@pytest.mark.parametrize("suffix", [".pt2", ".onnx"])
def test_laps_vit_exports_and_matches_the_eager_model(tmp_path, suffix):
    report = _check(_model("vit", "laps"), tmp_path / f"model{suffix}")
    assert report["max_abs_diff"] < 1e-5  # ViT logits are small here: an absolute match


@pytest.mark.slow
@pytest.mark.parametrize("suffix", [".pt2", ".onnx"])
@pytest.mark.parametrize("temporal", sorted(laps.VARIANTS))
@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_every_variant_of_both_families_exports(tmp_path, family, temporal, suffix):
    _check(_model(family, temporal), tmp_path / f"model{suffix}")


@pytest.mark.parametrize("suffix", [".pt2", ".onnx"])
def test_a_model_exported_at_t4_refuses_t2_clips_clearly(tmp_path, suffix):
    model = _model("vit", "laps", num_frames=4)
    run = load_exported(export(model, tmp_path / f"model{suffix}"))
    with pytest.raises(ShapeError, match=rf"model{suffix} takes clips \(B, 4, 3, 32, 32\) = \(B, T, C, H, W\), got "
                                         r"\(1, 2, 3, 32, 32\).*sample 4 frames.*set_num_frames"):
        run(torch.randn(1, 2, 3, 32, 32))
    assert run(torch.randn(2, 4, 3, 32, 32)).shape == (2, 5)


def test_a_wrong_extension_is_refused(tmp_path):
    with pytest.raises(ConfigError, match=r"model.tflite: the format follows the extension, one of \.pt2, \.onnx"):
        export(_model("vit", "laps"), tmp_path / "model.tflite")


def test_example_clips_have_the_model_input_shape():
    model = _model("visformer", "ps", num_frames=2)
    assert example_clips(model, 3).shape == (3, 2, 3, 32, 32)


def test_the_cli_exports_a_run_and_reports_the_check(tiny_data, tmp_path, capsys):
    import onnx

    from laps.engine.trainer import train
    from tests.helpers import tiny_config

    run = tmp_path / "run"
    train(tiny_config(tiny_data, run, **{"optim.epochs": 1, "data.val_list": None}))
    capsys.readouterr()
    assert main(["export", "--checkpoint", str(run), "--output", str(tmp_path / "run.onnx")]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["passed"] and report["num_frames"] == 4 and report["format"] == ".onnx"
    props = {p.key: json.loads(p.value) for p in onnx.load(str(tmp_path / "run.onnx")).metadata_props}
    assert props["num_frames"] == 4 and len(props["classes"]) == 10 and props["temporal"] == "laps"
