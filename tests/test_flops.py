"""FLOPs counting reproduces the paper's Visformer-S numbers; the CLI prints them."""

import json
from pathlib import Path

import pytest
import torch

import laps
from laps.analysis.flops import count_flops, model_cost
from laps.cli import main


@pytest.mark.slow
@pytest.mark.parametrize("temporal, gflops", [("base2d", 39.07), ("ps", 39.07), ("la", 40.14), ("laps", 40.14),
                                              ("joint", 46.51)])
def test_visformer_small_matches_the_paper_to_its_last_digit(temporal, gflops):
    """The paper's table (Visformer-S, 8x224, 400 classes) gives GFLOPs to two decimals and 39.76M
    params: ours must round to the same numbers."""
    cost = model_cost("visformer_small", temporal, num_frames=8, img_size=224, num_classes=400)
    assert abs(cost["gflops"] - gflops) <= 0.005
    assert abs(cost["params"] / 1e6 - 39.76) <= 0.005
    assert abs(cost["base2d_gflops"] - 39.07) <= 0.005


def test_leap_attention_costs_exactly_its_pairs():
    """Attention over pairs of frames costs 2 (2N)^2 d per pair against 2 N^2 d per frame: exactly
    2 T N^2 d more per block than per-frame attention; the shift costs nothing."""
    kw = dict(num_classes=5, img_size=32, patch_size=8, depth=2)
    clips = torch.zeros(1, 4, 3, 32, 32)
    flops = {variant: count_flops(laps.create_model("vit_tiny_patch16_224", temporal=variant, num_frames=4, **kw), clips)
             for variant in ("base2d", "ps", "la", "laps")}
    frames, tokens, dim, depth = 4, 17, 192, 2
    assert flops["la"] - flops["base2d"] == depth * 2 * frames * tokens**2 * dim
    assert flops["laps"] == flops["la"] and flops["ps"] == flops["base2d"]


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
    assert main(["flops", "test_vit", "--temporal", "laps", "--num-frames", "4", "--img-size", "32", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out) == {"params", "gflops", "base2d_gflops", "overhead"}
    assert out["gflops"] > out["base2d_gflops"] > 0
    assert out["overhead"] == pytest.approx(out["gflops"] / out["base2d_gflops"] - 1)


def test_cli_errors_are_one_line_with_exit_code_2(capsys):
    assert main(["flops", "resnet18"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("laps flops: error:") and "\n" not in err


@pytest.mark.slow
def test_flops_of_a_recipe_are_the_documented_ones(capsys):
    """docs/model_zoo.md: the Visformer-S LAPS recipe counts 40.14 GFLOPs a view and 39.76M params."""
    recipe = str(Path(__file__).parents[1] / "configs" / "k400_visformer_s_laps.yaml")
    assert main(["flops", "--config", recipe, "--json"]) == 0
    cost = json.loads(capsys.readouterr().out)
    assert abs(cost["gflops"] - 40.14) <= 0.005 and abs(cost["params"] / 1e6 - 39.76) <= 0.005
    assert main(["flops", "--config", recipe, "--temporal", "base2d", "--json"]) == 0
    assert abs(json.loads(capsys.readouterr().out)["gflops"] - 39.07) <= 0.005  # a flag overrides the recipe


@pytest.mark.parametrize("backbone", ["vit_base_patch16_clip_224", "eva02_tiny_patch14_224",
                                      *(pytest.param(b, marks=pytest.mark.slow)
                                        for b in ("vit_small_patch16_dinov3", "vit_small_patch16_rope_224"))])
def test_foundation_families_pay_exactly_their_pairs(backbone):
    """The same count for the foundation families: rotary embeddings and extra tokens change nothing
    but N (class + register/storage tokens + patches)."""
    kw = dict(num_classes=5, img_size=32, patch_size=16, depth=2, embed_dim=64, num_heads=2)
    clips = torch.zeros(1, 4, 3, 32, 32)
    models = {v: laps.create_model(backbone, temporal=v, num_frames=4, **kw) for v in ("base2d", "laps")}
    tokens = models["base2d"].backbone.num_prefix_tokens + 4
    flops = {variant: count_flops(model, clips) for variant, model in models.items()}
    assert flops["laps"] - flops["base2d"] == 2 * 2 * 4 * tokens**2 * 64
