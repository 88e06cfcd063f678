"""Video models over timm backbones: parameters, keys, semantics, loading, dtypes, compile."""

import pytest
import timm
import torch

import laps
from laps.errors import CheckpointError, ConfigError, ShapeError, UnsupportedBackboneError
from laps.models.temporal import default_levels
from tests.helpers import TINY_VIT, TINY_VIT_KW

FAMILIES = {
    "vit_tiny_patch16_224": {**TINY_VIT_KW, "depth": 4},  # four blocks: every leap level of T=8 and a repeat
    "deit_tiny_patch16_224": {**TINY_VIT_KW, "depth": 4},
    "vit_small_patch16_224": {"img_size": 32, "patch_size": 16, "depth": 2},
    "vit_base_patch16_224": {"img_size": 32, "patch_size": 16, "depth": 1},
    "vit_large_patch16_224": {"img_size": 32, "patch_size": 16, "depth": 1},
    "visformer_tiny": {"img_size": 64, "depth": (1, 1, 1)},  # one block a stage: two attention blocks
    "visformer_small": {"img_size": 64},
}


def _video(name=TINY_VIT, temporal="laps", num_frames=4, **kwargs):
    kw = {**FAMILIES.get(name, {}), **kwargs}
    return laps.create_model(name, temporal=temporal, num_frames=num_frames, num_classes=7, **kw).eval()


def _clips(model_kw, batch=2, num_frames=4):
    size = model_kw["img_size"]
    return torch.randn(batch, num_frames, 3, size, size)


# every small family as laps and every variant on ViT-tiny in the quick selection; the rest of the grid is slow
FULL_SIZE = ("visformer_small", "vit_large_patch16_224", "vit_base_patch16_224")
ZERO_EXTRA_CASES = [pytest.param(name, temporal, marks=() if (temporal == "laps" and name not in FULL_SIZE) or name == TINY_VIT
                                                   else pytest.mark.slow)
                    for name in sorted(FAMILIES) for temporal in sorted(laps.VARIANTS)]


@pytest.mark.parametrize("name, temporal", ZERO_EXTRA_CASES)
def test_zero_extra_parameters_and_same_state_dict_keys(name, temporal):
    image = timm.create_model(name, num_classes=7, **FAMILIES[name])
    video = _video(name, temporal)
    assert list(video.backbone.state_dict()) == list(image.state_dict())
    assert sum(p.numel() for p in video.parameters()) == sum(p.numel() for p in image.parameters())
    # the model's own keys are those of its parameters (and buffers), as PyTorch tools expect
    own = [key for key, _ in video.named_parameters()] + [key for key, _ in video.named_buffers()]
    assert sorted(video.state_dict()) == sorted(own) == sorted("backbone." + key for key in image.state_dict())
    video.load_state_dict(laps.checkpoint_filter_fn(image.state_dict(), video))  # 2D weights load strictly
    image.load_state_dict(video.backbone.state_dict())  # and back
    assert all(torch.equal(a, b) for a, b in zip(video.state_dict().values(), image.state_dict().values()))


def test_checkpoint_filter_keeps_own_keys_and_leaves_foreign_ones_to_the_strict_load():
    video = _video(TINY_VIT, "laps", depth=1)
    own = video.state_dict()
    assert laps.checkpoint_filter_fn(own, video).keys() == own.keys()
    foreign = {"head.weight": own["backbone.head.weight"], "decoder.weight": torch.zeros(1)}
    assert list(laps.checkpoint_filter_fn(foreign, video)) == ["backbone.head.weight", "decoder.weight"]


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n in FULL_SIZE else n for n in sorted(FAMILIES)])
def test_base2d_equals_timm_framewise_logits_averaged(name):
    image = timm.create_model(name, num_classes=7, **FAMILIES[name]).eval()
    clips = _clips(FAMILIES[name])
    with torch.no_grad():
        expected = image(clips.flatten(0, 1)).unflatten(0, (2, 4)).mean(1)
        video = laps.lapsify(image, num_frames=4, temporal="base2d")
        # fp32 summation order differs with memory layout and thread count (~3e-4 seen on visformer_small)
        torch.testing.assert_close(video(clips), expected, atol=1e-3, rtol=1e-3)


@pytest.mark.parametrize("name", ["vit_tiny_patch16_224", pytest.param("visformer_tiny", marks=pytest.mark.slow)])
def test_laps_sees_frame_order_and_base2d_does_not(name):
    shallow = {"depth": 2} if name == TINY_VIT else {}  # two ViT blocks: both leap levels of T=4
    clips = _clips(FAMILIES[name])
    reversed_clips = clips.flip(1)
    shuffled_clips = clips[:, [1, 0, 2, 3]]
    with torch.no_grad():
        base = _video(name, "base2d", **shallow)
        torch.testing.assert_close(base(clips), base(reversed_clips), atol=1e-5, rtol=1e-4)
        torch.testing.assert_close(base(clips), base(shuffled_clips), atol=1e-5, rtol=1e-4)
        for temporal in ("laps", "ps", "plain_shift"):
            model = _video(name, temporal, **shallow)
            model.load_state_dict(base.state_dict())
            assert not torch.allclose(model(clips), model(reversed_clips), atol=1e-3), temporal
        # Leap Attention alone mixes frames but is symmetric within a pair: reversing a clip of
        # T=4 maps the pairs {0,2},{1,3} and {0,1},{2,3} onto themselves, so only P-Shift
        # tells the direction of time. Other orders change the pairs and the output.
        la = _video(name, "la", **shallow)
        la.load_state_dict(base.state_dict())
        torch.testing.assert_close(la(clips), la(reversed_clips), atol=1e-3, rtol=1e-3)
        assert not torch.allclose(la(clips), la(shuffled_clips), atol=1e-3)


@pytest.mark.parametrize("name", ["vit_tiny_patch16_224", "visformer_tiny"])
def test_single_frame_laps_equals_image_model(name):
    image = timm.create_model(name, num_classes=7, **FAMILIES[name]).eval()
    clip = _clips(FAMILIES[name], batch=3, num_frames=1)
    with torch.no_grad():
        expected = image(clip[:, 0])
        video = laps.lapsify(image, num_frames=1, temporal="laps")
        torch.testing.assert_close(video(clip), expected, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("name", ["vit_tiny_patch16_224", "visformer_tiny"])
def test_gradients_reach_every_parameter(name):
    model = _video(name, "laps").train()
    model(_clips(FAMILIES[name])).logsumexp(-1).sum().backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not missing


def test_joint_equals_masked_full_attention_per_clip():
    """joint over T frames = a ViT run on all T*N tokens of a clip as one sequence (same weights)."""
    model = _video(TINY_VIT, "joint", depth=1, num_frames=3)
    torch.manual_seed(1)
    clips = _clips(FAMILIES[TINY_VIT], batch=1, num_frames=3)
    attn = model.backbone.blocks[0].attn
    tokens = torch.randn(3, 17, 192)  # (T, N, C)
    with torch.no_grad():
        attn.set_frames(3, -1)
        got = attn(tokens)
        qkv = attn.qkv(tokens.reshape(1, 51, 192)).reshape(1, 51, 3, 3, 64).permute(2, 0, 3, 1, 4)
        out = torch.nn.functional.scaled_dot_product_attention(*qkv.unbind(0))
        expected = attn.proj(out.transpose(1, 2).reshape(1, 51, 192)).reshape(3, 17, 192)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-4)
    assert model(clips).shape == (1, 7)


def test_set_num_frames_rederives_default_schedule_and_explicit_levels_persist():
    model = _video(TINY_VIT, "laps", num_frames=8)
    assert model.block_levels == default_levels(8, 4)
    model.set_num_frames(16)
    assert model.num_frames == 16
    with torch.no_grad():
        assert model(_clips(FAMILIES[TINY_VIT], batch=1, num_frames=16)).shape == (1, 7)
    assert [m.level for m in model.attention_modules] == model.block_levels == default_levels(16, 4)
    assert model.attention_modules[0].groups == ((0, 8), (1, 9), (2, 10), (3, 11), (4, 12), (5, 13), (6, 14), (7, 15))
    levels = [1, None, 2, 0]
    explicit = _video(TINY_VIT, "laps", num_frames=8, levels=levels)
    explicit.set_num_frames(5)
    assert [m.level for m in explicit.attention_modules] == [1, None, 2, None]
    assert explicit.attention_modules[0].groups == ((0, 2), (1, 3), (4,))  # level 1 at T=5: leap 5 // 2


def test_forward_refuses_clips_of_another_length_without_reconfiguring():
    model = _video(TINY_VIT, "laps", num_frames=8, depth=2)
    groups = [m.groups for m in model.attention_modules]
    with pytest.raises(ShapeError, match=r"clips have 4 frames but the model is set for 8; call model.set_num_frames\(4\)"):
        model(_clips(FAMILIES[TINY_VIT], batch=1, num_frames=4))
    assert [m.groups for m in model.attention_modules] == groups and model.num_frames == 8
    with pytest.raises(ConfigError, match="num_frames must be an integer >= 1"):
        model.set_num_frames(0)


def test_default_levels_cycle():
    assert default_levels(8, 8) == [1, 2, 3, 1, 2, 3, 1, 2]
    assert default_levels(32, 6) == [1, 2, 3, 4, 5, 1]
    assert default_levels(1, 3) == [1, 1, 1]


def test_forward_features_is_per_clip():
    model = _video()
    with torch.no_grad():
        features = model.forward_features(_clips(FAMILIES[TINY_VIT]))
    assert features.shape == (2, 192)


def test_bf16_forward_close_to_fp32():
    model = _video()
    clips = _clips(FAMILIES[TINY_VIT])
    with torch.no_grad():
        want = model(clips)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            got = model(clips)
    assert got.dtype == torch.bfloat16 and not torch.equal(got.float(), want)  # it did run in bf16
    # bf16 keeps 8 significant bits (relative step 2^-8 = 0.004): after the blocks the logits (up to
    # about 0.8 here) are within 0.02, while a wrong frame mix moves them by their spread (about 0.3)
    torch.testing.assert_close(got.float(), want, atol=0.02, rtol=0)


@pytest.mark.slow  # torch.compile
def test_torch_compile_forward_equals_eager():
    model = _video(depth=2)
    clips = _clips(FAMILIES[TINY_VIT])
    with torch.no_grad():
        want = model(clips)
        got = torch.compile(model, backend="eager")(clips)
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("suffix", [".safetensors", ".pth"])
def test_pretrained_file_loads_2d_checkpoint_and_drops_other_head(tmp_path, suffix):
    kw = {**TINY_VIT_KW, "depth": 2}
    image = timm.create_model(TINY_VIT, num_classes=10, **kw)
    path = tmp_path / f"vit{suffix}"
    if suffix == ".safetensors":
        from safetensors.torch import save_file

        save_file(image.state_dict(), str(path))
    else:
        torch.save({"state_dict": image.state_dict()}, path)
    same_head = laps.create_model(TINY_VIT, num_classes=10, pretrained=path, **kw)
    for key, value in image.state_dict().items():
        torch.testing.assert_close(same_head.backbone.state_dict()[key], value)
    other_head = laps.create_model(TINY_VIT, num_classes=3, pretrained=path, **kw)
    torch.testing.assert_close(other_head.backbone.state_dict()["blocks.0.attn.qkv.weight"], image.state_dict()["blocks.0.attn.qkv.weight"])
    assert other_head.backbone.state_dict()["head.weight"].shape == (3, 192)


def test_pretrained_file_resizes_position_embeddings(tmp_path):
    from safetensors.torch import save_file

    image = timm.create_model(TINY_VIT, num_classes=10, **TINY_VIT_KW, depth=1)
    save_file(image.state_dict(), str(tmp_path / "vit.safetensors"))
    bigger = laps.create_model(TINY_VIT, num_classes=10, pretrained=tmp_path / "vit.safetensors", img_size=48, patch_size=8,
                               depth=1)
    assert bigger.backbone.state_dict()["pos_embed"].shape == (1, 37, 192)
    torch.testing.assert_close(bigger.backbone.state_dict()["cls_token"], image.state_dict()["cls_token"])

    shallow = {"depth": (1, 1, 1)}
    visformer = timm.create_model("visformer_tiny", num_classes=10, img_size=64, **shallow)
    save_file(visformer.state_dict(), str(tmp_path / "vis.safetensors"))
    resized = laps.create_model("visformer_tiny", num_classes=10, pretrained=tmp_path / "vis.safetensors", img_size=96,
                                **shallow)
    assert resized.backbone.state_dict()["pos_embed1"].shape == (1, 96, 12, 12)  # stage 1: 96 channels, 96 px / 8
    assert resized.backbone.state_dict()["pos_embed1"].shape != visformer.pos_embed1.shape


def test_pretrained_file_from_another_backbone_gives_clear_error(tmp_path):
    from safetensors.torch import save_file

    other = timm.create_model("vit_small_patch16_224", num_classes=10, img_size=32, patch_size=8, depth=1)
    save_file(other.state_dict(), str(tmp_path / "small.safetensors"))
    with pytest.raises(CheckpointError, match="another backbone"):
        laps.create_model(TINY_VIT, num_classes=10, pretrained=tmp_path / "small.safetensors", **TINY_VIT_KW, depth=1)
    with pytest.raises(CheckpointError, match="does not exist"):
        laps.create_model(TINY_VIT, pretrained=tmp_path / "missing.pth", **TINY_VIT_KW, depth=1)


@pytest.mark.parametrize(
    "call, error, match",
    [
        (lambda: _video()(torch.randn(4, 3, 32, 32)), ShapeError, "unsqueeze"),
        (lambda: _video()(torch.randn(1, 4, 1, 32, 32)), ShapeError, "channels"),
        (lambda: _video(temporal="nope"), ConfigError, "laps"),
        (lambda: _video(levels=[1, 2]), ConfigError, "4 attention blocks"),
        (lambda: _video(levels=[-2] * 4), ConfigError, ">= 1"),
        (lambda: _video(fold_div=128), ConfigError, "no channel"),
        (lambda: laps.create_model("resnet18"), UnsupportedBackboneError, "VisionTransformer"),
        (lambda: laps.create_model("not_a_model"), UnsupportedBackboneError, "list_models"),
    ],
)
def test_bad_input_gives_one_line_errors(call, error, match):
    with pytest.raises(error, match=match) as info:
        call()
    assert "\n" not in str(info.value)


def test_frames_of_another_size_than_the_backbone_takes_get_one_line_naming_img_size():
    """timm's DINOv2 is built for 518 px; 224 px clips get a laps error that names the fix, not timm's assertion."""
    model = laps.create_model("vit_small_patch14_reg4_dinov2", num_frames=2, depth=1).eval()
    with pytest.raises(ShapeError, match=r"clips are 224x224 px .* takes 518x518 frames; build the model with "
                                         r"img_size=224") as info:
        model(torch.zeros(1, 2, 3, 224, 224))
    assert "\n" not in str(info.value)
    with pytest.raises(ShapeError, match=r"img_size=\(64, 48\)"):
        _video()(torch.zeros(1, 4, 3, 64, 48))


def test_list_models_covers_supported_families():
    names = laps.list_models()
    for name in ("vit_tiny_patch16_224", "vit_small_patch16_224", "vit_base_patch16_224", "vit_large_patch16_224",
                 "deit_tiny_patch16_224", "visformer_tiny", "visformer_small"):
        assert name in names
    assert all(n.startswith("visformer") for n in laps.list_models("visformer*"))


def test_pretrained_true_picks_the_papers_weights_and_their_normalisation():
    from laps.models.feed import resolve_feed
    from laps.models.pretrained import weights_cfg, weights_name

    def normalization(backbone):
        return resolve_feed(pretrained_cfg=weights_cfg(backbone)).norm

    assert weights_name("vit_base_patch16_224") == "vit_base_patch16_224.augreg_in21k"
    assert weights_name("visformer_small") == "visformer_small.in1k"
    assert weights_name("vit_base_patch16_224.augreg2_in21k_ft_in1k") == "vit_base_patch16_224.augreg2_in21k_ft_in1k"
    assert weights_name("deit_small_patch16_224") == "deit_small_patch16_224.fb_in1k"  # timm's default tag
    assert normalization("vit_base_patch16_224") == ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))
    assert normalization("visformer_small") == ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))


def test_hub_weights_without_network_fail_at_once_in_one_line(tmp_path, monkeypatch):
    import time

    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path))  # an empty cache
    for offline in (True, False):
        monkeypatch.setattr(constants, "HF_HUB_OFFLINE", offline)
        monkeypatch.setattr("laps.models.pretrained._hub_unreachable", lambda endpoint: "the test has no network")
        began = time.monotonic()
        with pytest.raises(CheckpointError) as info:
            laps.create_model("vit_base_patch16_224", pretrained=True, num_frames=2)
        assert time.monotonic() - began < 5
        message = str(info.value)
        assert "'vit_base_patch16_224.augreg_in21k'" in message and "pretrained='path/to/weights.safetensors'" in message
        assert ("HF_HUB_OFFLINE is set" if offline else "the test has no network") in message and "\n" not in message
    with pytest.raises(CheckpointError) as info:  # a foundation model's tag: the tag and the folder to fill
        laps.create_model("vit_base_patch16_clip_224.openai", pretrained=True, num_frames=2)
    assert "'vit_base_patch16_clip_224.openai'" in str(info.value)
    assert str(tmp_path / "models--timm--vit_base_patch16_clip_224.openai") in str(info.value)
