"""The family registry: one record per backbone family, read by the factory, the video model, the
pretrained loader and the optimizer's layer grouping. A 224 px checkpoint of each family loads at
112 and 384 px exactly as timm's own filter of that family loads it into the image model."""

import pytest
import timm
import torch
import torch.nn.functional as F
from safetensors.torch import save_file
from timm.models import eva, vision_transformer

import laps
from laps.errors import UnsupportedBackboneError
from laps.models.registry import FAMILIES, family_of
from tests.helpers import TINY_MODELS

#: family -> (timm model, tiny overrides, timm's checkpoint filter of the family; None: timm has none)
CHECKPOINTS = {
    "vit": ("vit_tiny_patch16_224", {"depth": 1}, vision_transformer.checkpoint_filter_fn),
    "dinov2_registers": ("vit_small_patch14_reg4_dinov2", {"depth": 1, "embed_dim": 96, "num_heads": 2},
                         vision_transformer.checkpoint_filter_fn),  # five prefix tokens
    "eva02": ("eva02_tiny_patch14_224", {"depth": 1}, eva.checkpoint_filter_fn),
    "visformer": ("visformer_tiny", {"depth": (1, 1, 1)}, None),  # (1, C, H, W) position-embedding maps per stage
}
#: the rows of the quick selection; the others are slow
QUICK = {("vit", 112), ("eva02", 112), ("eva02", 384), ("visformer", 112)}


def _reference(name, kwargs, timm_filter, size, state_dict):
    """What timm gives: the image model built at ``size`` with the checkpoint through timm's filter of
    the family. timm has no filter for Visformer; there each ``(1, C, H, W)`` map is resized bicubically
    with antialiasing, as timm resizes a ViT's."""
    model = timm.create_model(name, img_size=size, **kwargs)
    if timm_filter is not None:
        model.load_state_dict(timm_filter(state_dict, model))
        return model.state_dict()
    own = model.state_dict()
    resized = {k: F.interpolate(v, size=own[k].shape[-2:], mode="bicubic", antialias=True) if k.startswith("pos_embed")
               else v for k, v in state_dict.items()}
    model.load_state_dict(resized)
    return model.state_dict()


@pytest.mark.parametrize("family, size", [
    pytest.param(family, size, marks=() if (family, size) in QUICK else pytest.mark.slow)
    for family in CHECKPOINTS for size in (112, 384)])
def test_a_224_px_checkpoint_loads_at_another_size_as_timms_filter_loads_it(tmp_path, family, size):
    name, kwargs, timm_filter = CHECKPOINTS[family]
    torch.manual_seed(0)
    image = timm.create_model(name, img_size=224, **kwargs)
    state_dict = {k: v.contiguous() for k, v in image.state_dict().items()}
    save_file(state_dict, tmp_path / "weights.safetensors")

    video = laps.create_model(name, img_size=size, pretrained=tmp_path / "weights.safetensors", num_frames=2,
                              **kwargs)
    got = video.backbone.state_dict()
    expected = _reference(name, kwargs, timm_filter, size, state_dict)
    assert got.keys() == expected.keys()
    for key in got:
        assert torch.equal(got[key], expected[key]), key
    resized = [k for k in got if k.startswith("pos_embed") and got[k].shape != state_dict[k].shape]
    assert resized, "the model at another size has position embeddings of another shape"


def test_each_family_is_found_from_its_models_and_only_them():
    for family in FAMILIES:
        name, kwargs = TINY_MODELS[family.name]
        image = timm.create_model(name, **kwargs)
        assert family_of(image) is family and [f for f in FAMILIES if f.matches(image)] == [family]
        assert type(image).__module__.rsplit(".", 1)[-1] in family.timm_modules
    resnet = timm.create_model("resnet18")
    names = ", ".join(family.name for family in FAMILIES[:-1]) + f" and {FAMILIES[-1].name} families"
    with pytest.raises(UnsupportedBackboneError, match=names):
        laps.lapsify(resnet, num_frames=2)


@pytest.mark.parametrize("name, kwargs, blocks", [
    ("vit_tiny_patch16_224", {"depth": 3, "img_size": 32}, 3),
    ("eva02_tiny_patch14_224", {"depth": 2, "img_size": 28}, 2),
    ("visformer_tiny", {"depth": (1, 1, 1), "img_size": 64}, 3),
])
def test_block_pattern_names_the_blocks_timm_counts_as_layers(name, kwargs, blocks):
    """``optim.train: last:N`` counts the layers of timm's grouping whose names the family's pattern matches."""
    from timm.models import group_parameters

    image = timm.create_model(name, **kwargs)
    pattern = family_of(image).block_pattern
    layer_of = group_parameters(image, image.group_matcher(coarse=False), reverse=True)
    assert len({layer for n, layer in layer_of.items() if pattern.match(n)}) == blocks
    assert not any(pattern.match(n) for n in ("head.weight", "norm.weight", "cls_token", "patch_embed.proj.weight"))
