"""optim.train: all | head | last:N freezes the rest of the model; frozen parameters get no
gradient, no optimizer state, no weight decay group, and stay bit-identical through training."""

import pytest
import torch
import torch.nn.functional as F

from laps.engine.builders import build_optimizer, freeze, set_train_mode
from laps.engine.config import load_config
from laps.errors import ConfigError
from laps.models import create_model
from tests.helpers import TINY_MODELS, TINY_VIT, TINY_VIT_KW

TINY_VISFORMER = {**TINY_MODELS["Visformer"][1], "depth": (1, 2, 2)}


def _model(backbone: str = TINY_VIT):
    torch.manual_seed(0)
    kwargs = {**TINY_VIT_KW, "depth": 4} if backbone == TINY_VIT else TINY_VISFORMER
    return create_model(backbone, temporal="laps", num_frames=4, num_classes=3, **kwargs)


def _train(model, optimizer, steps: int = 3) -> None:
    generator = torch.Generator().manual_seed(0)
    for _ in range(steps):
        set_train_mode(model)
        clips = torch.randn(2, 4, 3, 32, 32, generator=generator)
        F.cross_entropy(model(clips), torch.tensor([0, 2])).backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)


def _trained_names(model) -> set[str]:
    return {name for name, p in model.backbone.named_parameters() if p.requires_grad}


@pytest.mark.parametrize("backbone, train, expected", [
    (TINY_VIT, "head", {"head."}),
    (TINY_VIT, "last:1", {"blocks.3.", "norm.", "head."}),
    (TINY_VIT, "last:2", {"blocks.2.", "blocks.3.", "norm.", "head."}),
    pytest.param("visformer_small", "head", {"head."}, marks=pytest.mark.slow),  # full size
    pytest.param("visformer_small", "last:2", {"stage3.0.", "stage3.1.", "patch_embed3.", "pos_embed3", "norm.", "head."},
                 marks=pytest.mark.slow),
    ("visformer_small", "last:3", {"stage2.1.", "stage3.0.", "stage3.1.", "patch_embed3.", "pos_embed3", "norm.",
                                   "head."}),  # one full-size row stays quick
])
@pytest.mark.parametrize("layer_decay", [1.0, 0.75])
def test_frozen_parameters_stay_bit_identical_and_hold_no_optimizer_state(backbone, train, expected, layer_decay):
    model = _model(backbone)
    config = load_config(None, [f"optim.train={train}", f"optim.layer_decay={layer_decay}", "optim.lr=1e-2"])
    freeze(model, config.optim.train)
    trained = _trained_names(model)
    assert {prefix for prefix in expected for name in trained if name.startswith(prefix)} == expected
    assert all(any(name.startswith(prefix) for prefix in expected) for name in trained)
    before = {name: p.detach().clone() for name, p in model.backbone.named_parameters()}
    optimizer = build_optimizer(model, config)
    _train(model, optimizer)

    params = dict(model.backbone.named_parameters())
    in_groups = {id(p) for group in optimizer.param_groups for p in group["params"]}
    for name, param in params.items():
        if name in trained:
            assert not torch.equal(param, before[name]), f"{name} was not trained"
            assert id(param) in in_groups and param in optimizer.state
        else:
            assert torch.equal(param, before[name]), f"{name} changed while frozen"
            assert param.grad is None and id(param) not in in_groups and param not in optimizer.state


def test_layer_decay_gives_the_trained_blocks_the_scales_of_full_training():
    scales = []
    for train in ("all", "last:2"):
        model = _model()
        freeze(model, train)
        optimizer = build_optimizer(model, load_config(None, [f"optim.train={train}", "optim.layer_decay=0.5"]))
        names = {id(p): name for name, p in model.backbone.named_parameters()}
        scales.append({names[id(p)]: group["lr_scale"] for group in optimizer.param_groups for p in group["params"]})
    full, partial = scales
    assert partial == {name: full[name] for name in partial}
    assert partial["blocks.2.attn.qkv.weight"] == 0.25 and partial["head.weight"] == 1.0  # 0.5 ** 2 layers down
    assert "blocks.1.attn.qkv.weight" not in partial and full["blocks.1.attn.qkv.weight"] == 0.125


def test_without_weight_decay_the_frozen_parameters_are_in_no_group_either():
    model = _model()
    freeze(model, "head")
    optimizer = build_optimizer(model, load_config(None, ["optim.weight_decay=0"]))
    assert [p for group in optimizer.param_groups for p in group["params"]] == list(model.backbone.head.parameters())


def test_frozen_blocks_run_as_at_inference():
    model = _model("visformer_small")
    freeze(model, "head")
    set_train_mode(model)
    assert not model.backbone.stage1.training and not model.backbone.stage3[1].training
    assert model.backbone.head.training and model.training


@pytest.mark.parametrize("backbone, train, match", [
    (TINY_VIT, "last:5", r"^optim.train=last:5 asks for more blocks than VisionTransformer has \(4\); use last:1 to last:4"),
    ("visformer_small", "last:6", r"than Visformer has \(5\)"),
])
def test_more_blocks_than_the_model_has_is_a_one_line_error(backbone, train, match):
    with pytest.raises(ConfigError, match=match):
        freeze(_model(backbone), train)


def test_all_trains_everything():
    model = _model()
    freeze(model, "all")
    assert all(p.requires_grad for p in model.parameters())


@pytest.mark.slow
def test_a_linear_probe_run_saves_the_backbone_it_started_from(tiny_data, tmp_path):
    from safetensors.torch import load_file

    from laps.engine.trainer import Trainer
    from tests.helpers import tiny_config

    trainer = Trainer(tiny_config(tiny_data, tmp_path, **{"optim.train": "head", "model.depth": 2}))
    start = {name: p.detach().clone() for name, p in trainer.model.backbone.named_parameters()}
    trainer.fit()
    saved = load_file(tmp_path / "last.safetensors")
    assert {name for name in start if not torch.equal(saved[name], start[name])} == {"head.weight", "head.bias"}
    assert len(trainer.optimizer.state) == 2


@pytest.mark.parametrize("name, train, expected", [
    ("vit_base_patch16_dinov3", "last:1", {"blocks.2", "norm", "head"}),  # Eva, storage tokens frozen with the stem
    ("eva02_base_patch14_224", "last:2", {"blocks.1", "blocks.2", "fc_norm", "head"}),
    ("vit_base_patch16_siglip_224", "last:1", {"blocks.2", "norm", "attn_pool", "head"}),  # the attention pool
    ("vit_base_patch16_siglip_224", "head", {"head"}),
])
def test_foundation_families_freeze_by_the_same_rule(name, train, expected):
    """On the timm image models themselves, before they are video backbones (freeze reads ``.backbone``
    and ``.family``)."""
    from types import SimpleNamespace

    import timm

    from laps.models.registry import family_of

    backbone = timm.create_model(name, num_classes=3, img_size=32, depth=3, embed_dim=64, num_heads=2)
    freeze(SimpleNamespace(backbone=backbone, family=family_of(backbone)), train)
    trained = {".".join(key.split(".")[:2]) if key.startswith("blocks.") else key.split(".")[0]
               for key, p in backbone.named_parameters() if p.requires_grad}
    assert trained == expected


@pytest.mark.parametrize("train", ["head", "all"])
def test_precise_bn_leaves_the_statistics_of_frozen_batch_norms_alone(train):
    from laps.engine.precise_bn import recompute_bn_stats

    model = _model("visformer_small")
    freeze(model, train)
    before = {name: b.clone() for name, b in model.named_buffers() if "running_" in name}
    batches = [torch.randn(2, 4, 3, 32, 32, generator=torch.Generator().manual_seed(i)) for i in range(2)]
    assert recompute_bn_stats(model, batches, 2) == (2 if train == "all" else 0)
    changed = [name for name, b in model.named_buffers() if "running_" in name and not torch.equal(b, before[name])]
    assert (changed == []) == (train == "head") and before
