"""Every shipped recipe (src/laps/configs/, also reached as configs/ in a checkout) loads, validates and builds its model (tiny replacement sizes where the
real one would take too long), so a recipe that rots fails CI; the foundation-model recipes hold the
values their comments name. (configs/parts/ holds pieces the recipes are based on.)"""

import dataclasses
import functools

import pytest
import torch

import laps
from laps.engine.builders import build_model
from laps.engine.config import load_config
from laps.engine.recipes import shipped_recipes

CONFIGS = list(shipped_recipes().values())

# ---------------------------------------------------------------- foundation-model fine-tunes
#: recipe -> (timm tag, LR, layer decay, drop path, epochs, warm-up, clips per optimizer step,
#: optim.train, where the comment says the values come from)
FOUNDATION = {
    "k400_clip_b16_laps": ("vit_base_patch16_clip_quickgelu_224.openai", 6e-4 * 256 / 2048, 0.6, 0.1, 30, 6, 256, "all", "FT-CLIP"),
    "k400_siglip2_b16_laps": ("vit_base_patch16_siglip_224.v2_webli", 6e-4 * 256 / 2048, 0.6, 0.1, 30, 6, 256, "all",
                              "our estimate"),
    "k400_dinov3_b16_laps": ("vit_base_patch16_dinov3.lvd1689m", 1e-4, 0.75, 0.1, 30, 5, 256, "all", "our estimate"),
    "k400_eva02_b14_laps": ("eva02_base_patch14_224.mim_in22k", 1e-4 * 256 / 1024, 0.7, 0.1, 30, 3, 256, "all", "EVA-02"),
    "k400_dinov3_b16_probe": ("vit_base_patch16_dinov3.lvd1689m", 1e-3, 1.0, 0.0, 10, 1, 256, "head", "our estimate"),
}
BACKBONES = ("clip_b16", "siglip2_b16", "dinov3_b16", "eva02_b14")


def test_the_recipes_are_found():
    assert {p.name for p in CONFIGS} >= {"demo.yaml", "k400_visformer_s_laps.yaml", "k400_vit_b16_laps.yaml"}


def _load(path):
    return load_config(path, ["model.pretrained=", "model.img_size=32", "data.scale_min=32", "data.scale_max=40"])


@functools.cache
def _recipe(path):
    """A recipe as it is, loaded once per test run (for the tests that only read it)."""
    return load_config(path)


def _distinct_models(paths):
    """One recipe per distinct architecture (the UCF101 and HMDB51 recipes of a backbone build the
    model of its K400 recipe; the build below replaces the image size, and drop path changes no shape)."""
    chosen = {}
    for path in paths:
        model = _recipe(path).model
        if model.head_init == "text":  # its architecture comes from the Hub: tests/engine/test_head_init_text.py
            continue
        chosen.setdefault(repr(dataclasses.replace(model, img_size=1, drop_path=0.0)), path)
    return list(chosen.values())


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.stem)
def test_recipe_loads_and_names_a_known_backbone(path):
    config = _load(path)  # the overrides touch the model's size and the data, not the output
    assert config.runtime.output == f"runs/{path.stem}" or path.stem in ("demo", "scratch_small")
    backbone = config.model.backbone
    if config.model.head_init == "text":  # an open_clip model on the Hub, in timm's organisation
        assert backbone.startswith("hf-hub:timm/")
        backbone = backbone.removeprefix("hf-hub:timm/")
    architecture = backbone.split(".")[0]  # without a pretrained tag
    assert laps.list_models(architecture) == [architecture]


@pytest.mark.slow  # full-size backbones, up to ViT-L
@pytest.mark.parametrize("path", _distinct_models(CONFIGS), ids=lambda p: p.stem)
def test_recipe_builds_its_model(path):
    config = _load(path)
    model = build_model(config, num_classes=3, pretrained=False).eval()
    with torch.no_grad():
        logits = model(torch.zeros(1, config.model.num_frames, model.in_chans, 32, 32))
    assert logits.shape == (1, 3) and model.temporal == config.model.temporal


@pytest.mark.parametrize("name, checkpointing", [("k400_vit_l16_laps_384", True), ("k400_vit_b16_laps_384", False)])
def test_the_vit_l_recipe_builds_its_model_with_activation_checkpointing(name, checkpointing):
    path = CONFIGS[0].parent / f"{name}.yaml"
    assert _recipe(path).model.grad_checkpointing is checkpointing
    tiny = load_config(path, ["model.pretrained=", "model.img_size=32", "model.depth=1", "model.embed_dim=32",
                              "model.num_heads=2"])
    assert build_model(tiny, num_classes=3, pretrained=False).backbone.grad_checkpointing is checkpointing


def test_a_variant_recipe_is_the_laps_recipe_with_another_variant():
    folder = CONFIGS[0].parent
    laps, la = (load_config(folder / f"k400_visformer_s_{v}.yaml") for v in ("laps", "la"))
    assert la.model.temporal == "la" and la.runtime.output == "runs/k400_visformer_s_la"
    la.model.temporal, la.runtime.output = laps.model.temporal, laps.runtime.output
    assert la == laps


def test_the_from_scratch_recipe_is_what_laps_train_does_by_default():
    scratch = load_config(CONFIGS[0].parent / "scratch_small.yaml")
    default = load_config(None)
    for key in ("optimizer", "lr", "weight_decay", "schedule", "warmup_epochs", "label_smoothing", "mixup"):
        assert getattr(scratch.optim, key) == getattr(default.optim, key), key
    assert (scratch.data.scale_min, scratch.data.scale_max, scratch.data.norm) == (None, None, "auto")
    assert scratch.model.pretrained == default.model.pretrained == ""


@pytest.mark.parametrize("name", FOUNDATION)
def test_a_foundation_recipe_holds_the_values_its_comment_names(name):
    import timm

    tag, lr, layer_decay, drop_path, epochs, warmup, batch, train, source = FOUNDATION[name]
    path = CONFIGS[0].parent / f"{name}.yaml"
    config = _recipe(path)
    o = config.optim
    assert config.model.backbone == tag and tag in timm.list_pretrained(tag)
    assert (o.lr, o.layer_decay, config.model.drop_path, o.epochs, o.warmup_epochs) == pytest.approx(
        (lr, layer_decay, drop_path, epochs, warmup), rel=1e-12)
    assert (o.batch_size * o.accum_steps, o.train, o.optimizer, config.model.pretrained) == (batch, train, "adamw", "timm")
    assert source.lower() in path.read_text().lower()
    assert config.runtime.output == f"runs/{name}"


@pytest.mark.parametrize("backbone", BACKBONES)
def test_ucf101_and_hmdb51_recipes_take_the_k400_recipe_at_a_quarter_of_its_batch_and_lr(backbone):
    folder = CONFIGS[0].parent
    k400, ucf, hmdb = (_recipe(folder / f"{data}_{backbone}_laps.yaml") for data in ("k400", "ucf101", "hmdb51"))
    assert (ucf.optim.batch_size * ucf.optim.accum_steps, ucf.optim.lr) == (64, pytest.approx(k400.optim.lr / 4))
    assert (ucf.data.format, hmdb.data.format, ucf.runtime.output) == ("ucf101", "hmdb51", f"runs/ucf101_{backbone}_laps")
    assert (ucf.model, ucf.optim.layer_decay) == (k400.model, k400.optim.layer_decay)
    assert (hmdb.model, hmdb.optim) == (ucf.model, ucf.optim)


def test_the_foundation_recipes_normalise_as_their_weights_were_trained():
    from timm.models import get_pretrained_cfg

    from laps.engine.builders import config_feed

    clip = _recipe(CONFIGS[0].parent / "k400_clip_b16_laps.yaml")
    cfg = get_pretrained_cfg("vit_base_patch16_clip_224.openai")
    assert config_feed(clip).norm == (tuple(cfg.mean), tuple(cfg.std)) and cfg.mean[0] == pytest.approx(0.4815, abs=1e-4)


def test_the_text_head_recipe_is_the_clip_recipe_started_from_its_zero_shot_head():
    from laps.openvocab.bridge import natively_quickgelu

    folder = CONFIGS[0].parent
    text, clip = (_recipe(folder / f"ucf101_clip_b16_laps{suffix}.yaml") for suffix in ("_text", ""))
    assert (text.model.head_init, text.model.pretrained, clip.model.pretrained) == ("text", "", "timm")
    assert natively_quickgelu(text.model.backbone) and "quickgelu" in clip.model.backbone
    assert text.optim == clip.optim and text.data == clip.data
