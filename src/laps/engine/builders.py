"""Build models, their optimizer and datasets from a :class:`~laps.engine.config.Config`."""

from __future__ import annotations

import math
from pathlib import Path

import torch
from timm.models import group_parameters
from timm.optim import create_optimizer_v2
from torch import nn

from laps.data import VideoDataset, load_annotations, load_classes
from laps.data.annotations import Annotations, find_file
from laps.engine.config import Config, ModelConfig, scale_range, trained_blocks
from laps.errors import ConfigError
from laps.models import VideoClassifier, create_model
from laps.models.feed import Feed, norm_presets, resolve_feed
from laps.models.pretrained import weights_cfg


def model_kwargs(m: ModelConfig) -> dict:
    """The ``create_model`` keyword arguments of a model config, besides backbone, variant, frames,
    classes and weights: timm's (``img_size``, ``drop_path_rate``, the size overrides that are set),
    ``levels`` and ``fold_div``."""
    kwargs = {"img_size": m.img_size, "drop_path_rate": m.drop_path, "levels": m.levels, "fold_div": m.fold_div}
    for key in ("patch_size", "depth", "embed_dim", "num_heads", "global_pool"):
        if getattr(m, key):
            kwargs[key] = getattr(m, key)
    return kwargs


def config_feed(config: Config) -> Feed:
    """How the model of ``config`` is fed in training, evaluation and its checkpoints
    (:func:`~laps.models.feed.resolve_feed`): the config's ``data.norm`` (``auto``: not given),
    ``data.sampling``, ``data.sampling_rate``, ``model.img_size`` and ``model.num_frames``, then the
    ``pretrained_cfg`` of the backbone's timm weights (their mean, std and interpolation)."""
    d, m = config.data, config.model
    mean, std = norm_presets()[d.norm] if d.norm != "auto" else (None, None)
    return resolve_feed(pretrained_cfg=_weights_cfg(m), mean=mean, std=std, input_size=m.img_size,
                        sampling=d.sampling, num_frames=m.num_frames, sampling_rate=d.sampling_rate)


def _weights_cfg(m: ModelConfig):
    """How the backbone's weights were trained: timm's ``pretrained_cfg`` of them, or with
    ``model.head_init: text`` open_clip's preprocessing of the model (its mean, std, interpolation)."""
    if m.head_init != "text":
        return weights_cfg(m.backbone)
    from laps.openvocab import feed_of, read_config, resolve_id

    feed = feed_of(read_config(resolve_id(m.backbone)))
    return {"mean": feed["mean"], "std": feed["std"], "interpolation": feed["interpolation"]}


def build_model(config: Config, num_classes: int, pretrained: bool = True,
                classes: list[str] | None = None) -> VideoClassifier:
    """The video model a config describes, with activation checkpointing when
    ``model.grad_checkpointing`` is on; ``pretrained=False`` skips 2D weights (e.g. when a laps
    checkpoint will be loaded right after). With ``model.head_init: text``, the zero-shot model of
    ``classes`` (:func:`laps.zero_shot`; architecture only when not ``pretrained``)."""
    m = config.model
    if m.head_init == "text":
        model = _text_head_model(m, num_classes, classes if pretrained else None)
        model.set_grad_checkpointing(m.grad_checkpointing)
        return model.train()
    weights = (True if m.pretrained == "timm" else m.pretrained or False) if pretrained else False
    model = create_model(m.backbone, temporal=m.temporal, num_frames=m.num_frames, num_classes=num_classes,
                         pretrained=weights, **model_kwargs(m))
    model.set_grad_checkpointing(m.grad_checkpointing)
    return model


def _text_head_model(m: ModelConfig, num_classes: int, classes: list[str] | None) -> VideoClassifier:
    """``model.head_init: text``: the zero-shot model of ``classes`` over open_clip model ``model.backbone``
    (its random-weight architecture when ``classes`` is None)."""
    from laps.openvocab import read_templates, text_head_model, zero_shot

    if m.pretrained:
        raise ConfigError("model.head_init: text takes its weights from the open_clip model model.backbone; "
                          "leave model.pretrained empty")
    options = {"temporal": m.temporal, "num_frames": m.num_frames, "levels": m.levels, "fold_div": m.fold_div,
               "drop_path_rate": m.drop_path}
    if classes is None:
        return text_head_model(m.backbone, num_classes, **options)
    templates = read_templates(m.templates) if m.templates else None
    model = zero_shot(m.backbone, classes, templates, **options)
    if model.video_cfg.img_size != m.img_size:
        raise ConfigError(f"model.img_size={m.img_size} but {m.backbone} takes {model.video_cfg.img_size}x"
                          f"{model.video_cfg.img_size} frames; set model.img_size: {model.video_cfg.img_size}")
    return model


def _path(root: str, name: str, key: str) -> Path:
    if not name:
        raise ConfigError(f"{key} is not set; pass it in the config or on the command line")
    return find_file(name, root, key)


def read_split(config: Config, list_key: str, classes: list[str] | None = None) -> tuple[Annotations, str]:
    """Records of ``data.train_list`` or ``data.val_list`` (labelled by ``classes`` if given) and
    the folder their paths are relative to (data.root, else the list's folder)."""
    d = config.data
    path = _path(d.root, getattr(d, list_key), f"data.{list_key}")
    root = d.root or str(path.parent)
    subset = "train" if list_key == "train_list" else "test"
    return load_annotations(path, root, d.format, classes=classes, subset=subset), root


def class_names(config: Config, annotations: Annotations) -> list[str]:
    """Class names: data.classes, else <root>/classes.json, else those the annotations carry,
    else ``class_0..class_{K-1}`` from the largest label."""
    d = config.data
    if d.classes:
        return load_classes(find_file(d.classes, d.root, "data.classes"))
    if d.root and (Path(d.root) / "classes.json").is_file():
        return load_classes(Path(d.root) / "classes.json")
    if annotations.classes:
        return list(annotations.classes)
    return [f"class_{i}" for i in range(max(r.label for r in annotations) + 1)]


def build_dataset(config: Config, annotations: Annotations, root: str, train: bool, views: str = "1x1") -> VideoDataset:
    feed = config_feed(config)
    return VideoDataset(
        annotations, root, feed.num_frames, feed.sampling_rate, train=train, img_size=feed.input_size,
        sampling=feed.sampling, views=views, scale_range=scale_range(config), flip=config.data.flip, norm=feed.norm,
        interpolation=feed.interpolation, seed=config.runtime.seed,
    )


def freeze(model: VideoClassifier, train: str) -> None:
    """Leave only the part ``optim.train`` names trainable (``requires_grad=False`` on the rest).

    ``all``: every parameter. ``head``: the classifier (``backbone.get_classifier()``), a linear
    probe on frozen features. ``last:N``: the last N blocks and everything after them (final norm,
    pooling, head). Blocks are the parameters the model's family record names (its ``block_pattern``),
    counted in timm's layer order (``group_matcher``, the order layer decay uses); a block may include
    the parts timm groups with it (a stage's patch embedding in front of its first block).
    """
    count = trained_blocks(train)
    if count is None:
        return
    backbone = model.backbone
    layer_of = group_parameters(backbone, backbone.group_matcher(coarse=False), reverse=True)  # name -> layer
    pattern = model.family.block_pattern
    blocks = sorted({layer for name, layer in layer_of.items() if pattern.match(name)})
    if count > len(blocks):
        raise ConfigError(f"optim.train={train} asks for more blocks than {type(backbone).__name__} has "
                          f"({len(blocks)}); use last:1 to last:{len(blocks)}, head or all")
    head = {id(p) for p in backbone.get_classifier().parameters()}
    first = blocks[-count] if count else math.inf
    for name, param in backbone.named_parameters():
        param.requires_grad_(id(param) in head or layer_of[name] >= first)


def set_train_mode(model: nn.Module) -> None:
    """``model.train()``, with every part whose parameters are all frozen in eval mode: frozen
    features are computed as at inference (BatchNorm running statistics, no dropout or drop-path)."""
    model.train()
    for module in model.modules():
        params = list(module.parameters())
        if params and not any(p.requires_grad for p in params):
            module.eval()


def build_optimizer(model: VideoClassifier, config: Config) -> torch.optim.Optimizer:
    """timm's AdamW or SGD-momentum over the trainable parameters, with weight decay off for
    biases and norms, and ``optim.layer_decay`` scales in each group's ``lr_scale``. Frozen
    parameters (:func:`freeze`) are in no group, so they get no state and no weight decay."""
    o = config.optim
    params = model.backbone
    if o.layer_decay == 1 and not o.weight_decay:  # timm would take every parameter, frozen ones too
        params = [p for p in model.backbone.parameters() if p.requires_grad]
    return create_optimizer_v2(params, opt="momentum" if o.optimizer == "sgd" else "adamw", lr=o.lr,
                               weight_decay=o.weight_decay, momentum=o.momentum,
                               layer_decay=o.layer_decay if o.layer_decay < 1 else None)
