"""FLOPs counting reproduces the paper's Visformer-S numbers; the CLI prints them."""

import json

import pytest
import torch

import laps
from laps.analysis.flops import count_flops, model_cost
from laps.cli import main


@pytest.mark.parametrize("temporal, gflops", [("base2d", 39.07), ("laps", 40.14), ("joint", 46.51)])
def test_visformer_small_matches_paper(temporal, gflops):
    cost = model_cost("visformer_small", temporal, num_frames=8, img_size=224, num_classes=400)
    assert cost["gflops"] == pytest.approx(gflops, rel=0.02)
    assert cost["params"] / 1e6 == pytest.approx(39.76, rel=0.02)
    assert cost["base2d_gflops"] == pytest.approx(39.07, rel=0.02)


def test_sdpa_is_counted():
    """Attention FLOPs grow with T for joint (T^2 N^2) but not for base2d: SDPA must be counted."""
    kw = dict(num_classes=5, img_size=32, patch_size=8, depth=1)
    base = laps.create_model("vit_tiny_patch16_224", temporal="base2d", num_frames=4, **kw)
    joint = laps.create_model("vit_tiny_patch16_224", temporal="joint", num_frames=4, **kw)
    clips = torch.zeros(1, 4, 3, 32, 32)
    tokens, dim = 17, 192
    extra_per_view = 2 * (4 * tokens) ** 2 * dim - 4 * 2 * tokens**2 * dim
    assert count_flops(joint, clips) - count_flops(base, clips) == pytest.approx(extra_per_view)


def test_flops_cli_json(capsys):
    assert main(["flops", "vit_tiny_patch16_224", "--temporal", "laps", "--frames", "4", "--img-size", "32", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out) == {"params", "gflops", "base2d_gflops", "overhead"}
    assert out["gflops"] > out["base2d_gflops"] > 0
    assert out["overhead"] == pytest.approx(out["gflops"] / out["base2d_gflops"] - 1)


def test_cli_errors_are_one_line_with_exit_code_2(capsys):
    assert main(["flops", "resnet18"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("laps flops: error:") and "\n" not in err
