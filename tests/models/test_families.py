"""Every image-model family laps converts, on random weights at 32 px: base2d is the image model frame by
frame, ``la`` on a clip of identical frames is the image model, ``laps`` sees time, the keys are timm's,
a timm checkpoint loads, and each family exports. Families laps refuses say why."""

import pytest
import timm
import torch

import laps
from laps.errors import UnsupportedBackboneError
from tests.helpers import fill_hub_cache

TINY = {"img_size": 32, "patch_size": 16, "depth": 2, "embed_dim": 64, "num_heads": 2}
#: family -> (timm model, tiny overrides): one model per family, the family's own blocks and tokens
FAMILIES = {
    "clip": ("vit_base_patch16_clip_224", TINY),  # pre-norm, quick GELU
    "siglip": ("vit_base_patch16_siglip_224", TINY),  # attention-pool ("map") head, no class token
    "dinov2_registers": ("vit_small_patch14_reg4_dinov2", TINY),  # register tokens, layer scale
    "mae": ("vit_base_patch16_224.mae", TINY),  # a tag whose config has no classifier
    "aimv2": ("aimv2_large_patch14_224", TINY),  # RMS norm, SwiGLU
    "tipsv2": ("vit_base_patch14_reg1_tipsv2", TINY),
    "beit3": ("beit3_base_patch16_224", TINY),
    "flexivit": ("flexivit_small", TINY),
    "eva02": ("eva02_tiny_patch14_224", TINY),  # EvaAttention, rotary embedding, SwiGLU
    "dinov3": ("vit_small_patch16_dinov3", TINY),  # storage tokens, DINOv3 rotary embedding
    "pe_core": ("vit_pe_core_tiny_patch16_384", TINY),  # Perception Encoder, attention pool
    "rope_vit": ("vit_small_patch16_rope_224", TINY),  # AttentionRope
    "rope_mixed": ("vit_small_patch16_rope_mixed_224", TINY),  # learned per-head rotary frequencies
    "rope_grouped_kv": ("vit_small_patch16_rope_224", {**TINY, "num_kv_heads": 1, "qkv_fused": False}),  # grouped k/v heads
}


def _randomize(model: torch.nn.Module) -> torch.nn.Module:
    """Seeded weights of unit scale: timm's init leaves layer scales at 1e-5 and some heads at zero,
    which would hide whether frames mix."""
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for param in model.parameters():
            param.copy_(torch.randn(param.shape, generator=generator) * 0.3)
    return model.eval()


def _image(family):
    name, kwargs = FAMILIES[family]
    return _randomize(timm.create_model(name, num_classes=5, **kwargs))


def _video(family, temporal, num_frames=4):
    name, kwargs = FAMILIES[family]
    video = laps.create_model(name, temporal=temporal, num_frames=num_frames, num_classes=5, **kwargs).eval()
    video.backbone.load_state_dict(_image(family).state_dict())
    return video


def _clips(batch=2, num_frames=4):
    return torch.randn(batch, num_frames, 3, 32, 32, generator=torch.Generator().manual_seed(1))


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_base2d_is_the_image_model_frame_by_frame(family):
    clips = _clips()
    with torch.no_grad():
        expected = _image(family)(clips.flatten(0, 1)).unflatten(0, (2, 4))
        torch.testing.assert_close(_video(family, "base2d").forward_frames(clips), expected, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_leap_attention_on_identical_frames_is_the_image_model(family):
    frame = _clips(num_frames=1)
    with torch.no_grad():
        expected = _image(family)(frame[:, 0])
        got = _video(family, "la").forward_frames(frame.expand(-1, 4, -1, -1, -1))
    for t in range(4):
        torch.testing.assert_close(got[:, t], expected, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_laps_sees_the_order_of_frames(family):
    clips = _clips()
    with torch.no_grad():
        model = _video(family, "laps")
        forward, backward = model(clips), model(clips.flip(1))
    assert torch.isfinite(forward).all()
    assert (forward - backward).abs().max() > 1e-3 * forward.abs().max()


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_keys_are_timms_and_a_timm_checkpoint_loads(family):
    image = _image(family)
    video = _video(family, "laps")
    assert {k: v.shape for k, v in video.backbone.state_dict().items()} == {
        k: v.shape for k, v in image.state_dict().items()}
    assert sum(p.numel() for p in video.parameters()) == sum(p.numel() for p in image.parameters())
    fresh = laps.create_model(FAMILIES[family][0], temporal="laps", num_frames=4, num_classes=5, **FAMILIES[family][1])
    fresh.load_state_dict(laps.checkpoint_filter_fn(image.state_dict(), fresh))
    assert all(torch.equal(a, b) for a, b in zip(fresh.backbone.state_dict().values(), image.state_dict().values()))


def test_rotary_embedding_then_pair_attention_equals_masked_attention_over_roped_tokens():
    """The rotary path against the oracle: rope per frame, then masked joint attention over all tokens."""
    from laps import ops
    from laps.models.eva import apply_rope
    from tests.helpers import masked_joint_attention

    video = _video("eva02", "la", num_frames=4).double()  # float64: the oracle's softmax is exact enough
    image, attn = video.backbone, video.attention_modules[0]
    with torch.no_grad():
        tokens, rope = image._pos_embed(image.patch_embed(_clips().double().flatten(0, 1)))  # Eva's (tokens, rope)
        assert rope is not None and attn.num_prefix_tokens == 1
        q, k, v = attn._project(tokens)
        q = apply_rope(q, rope, attn.num_prefix_tokens, attn.rotate_half)
        k = apply_rope(k, rope, attn.num_prefix_tokens, attn.rotate_half)
        expected = masked_joint_attention(q, k, v, 4, attn.groups)
        got = ops.frame_group_attention(q, k, v, 4, attn.groups)
        torch.testing.assert_close(got, expected)
        attn.shift, attn.fold = "none", 0
        out = attn(tokens, rope=rope)
        want = attn.proj(attn.norm(expected.transpose(1, 2).flatten(2)))
        torch.testing.assert_close(out, want)


def test_list_models_lists_the_foundation_families_and_not_the_refused():
    names = set(laps.list_models())
    for family, (name, _) in FAMILIES.items():
        assert name.split(".")[0] in names, family
    for name in ("vit_base_patch16_clip_224", "vit_base_patch16_dinov3", "eva02_base_patch14_224",
                 "vit_pe_core_base_patch16_224", "visformer_small", "deit_small_patch16_224"):
        assert name in names
    from laps.models.registry import refused_models

    assert refused_models() and not names & set(refused_models())
    assert not any(n.startswith(("beit_", "swin")) for n in names)


@pytest.mark.parametrize("name, reason", [
    ("vit_base_patch16_xp_224", "parallel branches"),
    ("vit_dwee_patch16_reg1_gap_256", "differential attention"),
    ("beit_base_patch16_224", "relative position bias"),
    ("swin_tiny_patch4_window7_224", "windowed attention"),
    ("vit_relpos_base_patch16_224", "relative position bias"),
    ("resnet18", "not a global-attention image transformer"),
    ("no_such_model", "not a timm model"),
])
def test_refused_families_say_why(name, reason):
    with pytest.raises(UnsupportedBackboneError, match=reason) as info:
        laps.create_model(name, num_frames=2)
    assert "\n" not in str(info.value)


def test_patch_dropout_is_refused_with_the_fix():
    with pytest.raises(UnsupportedBackboneError, match="patch_drop_rate=0"):
        laps.create_model("vit_small_patch16_rope_224", num_frames=2, patch_drop_rate=0.5, **TINY)


@pytest.mark.slow
def test_every_listed_model_builds_and_converts_and_every_refused_one_is_refused():
    """``list_models()`` is exactly what converts: the refused models and one in 24 listed ones, built
    on the meta device (no memory, no weights) and converted."""
    from laps.models.registry import refused_models

    listed = laps.list_models()
    for name in listed[::24]:
        with torch.device("meta"):
            laps.create_model(name, num_frames=2)
    for name in refused_models():
        with torch.device("meta"):
            image = timm.create_model(name)
        with pytest.raises(UnsupportedBackboneError):
            laps.lapsify(image, num_frames=2)


#: family -> the formats exported in the tests: both for one model of each attention adapter and head kind,
#: torch.export alone for the others (ONNX export takes about 35 s a model here)
EXPORTS = {"eva02": (".pt2", ".onnx"), "siglip": (".pt2", ".onnx"), "clip": (".pt2",), "dinov3": (".pt2",),
           "pe_core": (".pt2",), "rope_mixed": (".pt2",)}


@pytest.mark.slow
@pytest.mark.parametrize("family, suffix", [(f, s) for f, suffixes in EXPORTS.items() for s in suffixes])
def test_each_family_exports_and_matches_the_eager_model(tmp_path, family, suffix):
    from laps.export import check_export, export

    model = _video(family, "laps")
    export(model, tmp_path / f"model{suffix}")
    report = check_export(model, tmp_path / f"model{suffix}")
    assert report["passed"] and report["max_abs_diff"] <= 1e-4 * max(1.0, report["max_abs_logit"])

@pytest.mark.parametrize("tag", ["vit_base_patch16_clip_224.openai", "vit_small_patch16_dinov3.lvd1689m"])
def test_pretrained_tag_loads_timms_weights_from_the_local_cache(tmp_path, monkeypatch, tag):
    """``pretrained=True`` with a tag goes through timm's own loading: weights put in an offline Hugging Face
    cache where timm looks for that tag arrive in the video model's backbone."""
    from huggingface_hub import constants
    from safetensors.torch import save_file
    from timm.models import get_pretrained_cfg

    family = "clip" if "clip" in tag else "dinov3"
    image = _image(family)
    weights = tmp_path / "weights"
    weights.mkdir()
    save_file({k: v.contiguous() for k, v in image.state_dict().items()}, weights / "model.safetensors")
    fill_hub_cache(tmp_path, get_pretrained_cfg(tag).hf_hub_id, weights)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    video = laps.create_model(tag, pretrained=True, temporal="laps", num_frames=2, num_classes=5, **FAMILIES[family][1])
    loaded, saved = video.backbone.state_dict(), image.state_dict()
    body = [key for key in saved if not key.startswith("head.")]  # timm resets a classifier of another size
    assert len(body) > 10 and all(torch.equal(loaded[key], saved[key]) for key in body)
