"""Zero-shot video classifiers from class names: equal to open_clip on still clips, offline.

Tiny open_clip models with random weights are saved as local folders; a clip of identical frames
must get open_clip's own image-text logits (CLIP: ``scale * cos``; SigLIP: ``scale * cos + bias``)
from the variants that are the image model on a still clip.
"""

import json

import pytest
import torch

import laps
from laps.errors import CheckpointError, UnsupportedBackboneError
from laps.openvocab import VIDEO_TEMPLATES, load_open_clip, zero_shot
from laps.openvocab.bridge import resolve_id
from laps.openvocab.tower import image_tower
from tests.helpers import HALF, TINY_OPEN_CLIP, TINY_SIGLIP, save_open_clip

open_clip = pytest.importorskip("open_clip")
CLASSES = ["dancing", "cooking", "juggling"]


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("open_clip")
    return {"clip": save_open_clip(TINY_OPEN_CLIP, root / "clip"),
            "siglip": save_open_clip(TINY_SIGLIP, root / "siglip", HALF)}


@pytest.fixture(scope="module")
def loaded(folders):
    """The open_clip models of ``folders``, loaded once (``zero_shot`` takes them as they are)."""
    return {family: load_open_clip(folder) for family, folder in folders.items()}


def open_clip_logits(clip, image: torch.Tensor, classes=CLASSES) -> torch.Tensor:
    """open_clip's own logits of images ``(N, C, H, W)`` against ``classes``: scale * cos (+ bias)."""
    with torch.no_grad():
        weights = open_clip.build_zero_shot_classifier(clip.model, clip.tokenizer, classes, VIDEO_TEMPLATES)
        logits = clip.model.logit_scale.exp() * clip.model.encode_image(image, normalize=True) @ weights
        return logits if clip.model.logit_bias is None else logits + clip.model.logit_bias


def still_clip(size: int, frames: int = 4) -> tuple[torch.Tensor, torch.Tensor]:
    image = torch.randn(1, 3, size, size, generator=torch.Generator().manual_seed(0))
    return image, image.unsqueeze(1).expand(1, frames, 3, size, size).contiguous()


@pytest.mark.parametrize("family", ["clip", "siglip"])
@pytest.mark.parametrize("temporal", ["base2d", "la"])
def test_a_still_clip_gets_open_clips_probabilities(loaded, family, temporal):
    model = laps.zero_shot(loaded[family], CLASSES, temporal=temporal, num_frames=4)
    image, clip = still_clip(model.video_cfg.img_size)
    with torch.no_grad():
        got = model(clip)
    expected = open_clip_logits(loaded[family], image)
    assert torch.allclose(got, expected, atol=1e-4)
    assert torch.allclose(got.softmax(-1), expected.softmax(-1), atol=1e-4)
    if family == "siglip":  # SigLIP's own per-label probabilities are the sigmoid of these logits
        assert torch.allclose(got.sigmoid(), expected.sigmoid(), atol=1e-4)


def test_laps_is_not_the_image_model_on_a_still_clip_but_stays_linear_in_its_features(loaded):
    # the shift brings zeros into the first and last frames, so laps moves away from the image model
    model = zero_shot(loaded["clip"], CLASSES, temporal="laps", num_frames=4)
    image, clip = still_clip(model.video_cfg.img_size)
    with torch.no_grad():
        logits, features = model(clip), model.forward_features(clip)
        assert not torch.allclose(logits, open_clip_logits(loaded["clip"], image), atol=1e-4)
        assert torch.allclose(model.head(features), logits, atol=1e-5)


@pytest.mark.parametrize("family", ["clip", "siglip"])
def test_the_head_is_open_clips_zero_shot_classifier(folders, loaded, family):
    model = zero_shot(f"local-dir:{folders[family]}", CLASSES, templates=["a video of {}.", "{}"], num_frames=2)
    clip = loaded[family]
    weights = open_clip.build_zero_shot_classifier(clip.model, clip.tokenizer, CLASSES, ["a video of {}.", "{}"])
    head = model.backbone.get_classifier()
    assert torch.equal(head.classifier.weight, weights.T)
    assert head.logit_scale.item() == pytest.approx(clip.model.logit_scale.exp().item())
    bias = 0.0 if clip.model.logit_bias is None else clip.model.logit_bias.item()
    assert torch.equal(head.classifier.bias, torch.full((3,), bias))
    assert model.video_cfg.class_names == CLASSES and model.video_cfg.head == "text"
    assert list(model.video_cfg.mean) == pytest.approx(HALF["mean"] if family == "siglip" else open_clip.OPENAI_DATASET_MEAN)


@pytest.mark.parametrize("family", ["clip", pytest.param("siglip", marks=pytest.mark.slow)])
def test_save_and_from_pretrained_rebuild_the_text_head(loaded, family, tmp_path):
    model = zero_shot(loaded[family], CLASSES, temporal="laps", num_frames=2)
    model.save_pretrained(tmp_path / "zs")
    assert json.loads((tmp_path / "zs" / "config.json").read_text())["head"] == "text"
    rebuilt = laps.from_pretrained(tmp_path / "zs")
    size = model.video_cfg.img_size
    clip = torch.randn(2, 2, 3, size, size, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        assert torch.equal(rebuilt(clip), model(clip))
    assert rebuilt.video_cfg == model.video_cfg


def test_quickgelu_picks_timms_quickgelu_variant():
    b16 = open_clip.get_model_config("ViT-B-16-quickgelu")
    assert image_tower(b16, "b16").backbone == "vit_base_patch16_clip_quickgelu_224"
    assert image_tower({**b16, "quick_gelu": False}, "b16").backbone == "vit_base_patch16_clip_224"
    tiny = image_tower(TINY_OPEN_CLIP, "tiny")
    assert tiny.backbone == "vit_base_patch16_clip_quickgelu_224" and tiny.timm_kwargs["embed_dim"] == 64


@pytest.mark.parametrize("source", ["vit_base_patch14_dinov2", "vit_base_patch16_224.mae", "hf-hub:timm/vit_small_patch16_dinov3.lvd1689m",
                                    "eva02_base_patch14_224.mim_in22k", "vit_base_patch16_224.augreg_in21k"])
def test_a_family_without_a_text_tower_is_refused_in_one_line(source):
    with pytest.raises(UnsupportedBackboneError, match="no text tower") as info:
        resolve_id(source)
    assert "\n" not in str(info.value)


def test_a_folder_without_open_clip_config_and_odd_towers_are_refused(tmp_path):
    with pytest.raises(CheckpointError, match="open_clip_config.json"):
        resolve_id(tmp_path)
    with pytest.raises(UnsupportedBackboneError, match="ResNet"):
        image_tower(open_clip.get_model_config("RN50"), "RN50")
    with pytest.raises(UnsupportedBackboneError, match="attentional_pool"):
        image_tower(open_clip.get_model_config("coca_ViT-B-32"), "coca")


@pytest.mark.slow
@pytest.mark.parametrize("name", ["ViT-B-16-quickgelu", "ViT-B-16-SigLIP"])
def test_the_equality_holds_at_the_real_b16_layout(tmp_path, name):
    config = open_clip.get_model_config(name)
    config["text_cfg"].pop("hf_tokenizer_name", None)  # SigLIP's tokenizer lives on the Hub: use CLIP's
    config["text_cfg"]["vocab_size"] = 49408
    folder = save_open_clip(config, tmp_path / name, HALF if "SigLIP" in name else None)
    for temporal in ("base2d", "la"):
        model = zero_shot(folder, CLASSES, temporal=temporal, num_frames=2)
        assert model.video_cfg.backbone in ("vit_base_patch16_clip_quickgelu_224", "vit_base_patch16_siglip_224")
        image, clip = still_clip(224, frames=2)
        with torch.no_grad():
            got = model(clip)
        expected = open_clip_logits(load_open_clip(folder), image)
        assert torch.allclose(got.softmax(-1), expected.softmax(-1), atol=1e-4)
        assert torch.allclose(got, expected, atol=1e-4)


@pytest.mark.slow
def test_a_zero_shot_model_exports_with_its_text_head(loaded, tmp_path):
    from laps.export import check_export, export

    model = zero_shot(loaded["clip"], CLASSES, temporal="laps", num_frames=2)
    assert check_export(model, export(model, tmp_path / "zs.pt2"))["passed"]


def test_openai_and_metaclip_weights_on_the_hub_are_known_to_be_quickgelu():
    from laps.openvocab.bridge import natively_quickgelu

    assert natively_quickgelu("hf-hub:timm/vit_base_patch16_clip_224.openai")
    assert natively_quickgelu("hf-hub:timm/vit_large_patch14_clip_224.metaclip_400m")
    assert not natively_quickgelu("hf-hub:timm/vit_base_patch16_clip_224.laion2b")
    assert not natively_quickgelu("hf-hub:timm/ViT-B-16-SigLIP2")
