"""From an open_clip model id and class names to a zero-shot :class:`~laps.models.video.VideoClassifier`.

An id (``OPENCLIP_ID``) is ``hf-hub:ORG/REPO``, ``local-dir:PATH`` or a plain folder holding
``open_clip_config.json`` (and ``open_clip_model.safetensors``). open_clip is imported here only.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import timm
import torch
from timm.models import split_model_name_tag
from torch import nn

from laps.errors import CheckpointError, ConfigError, UnsupportedBackboneError
from laps.models.factory import image_model, image_size
from laps.models.pretrained import adapt_state_dict
from laps.models.registry import refusal
from laps.models.video import VideoClassifier
from laps.models.video_config import VideoConfig
from laps.openvocab.templates import VIDEO_TEMPLATES, check_templates
from laps.openvocab.tower import image_tower

CONFIG_FILE = "open_clip_config.json"
#: image-only pretraining found in a name, for the refusal of a model with no text tower
_IMAGE_ONLY = {"dinov3": "DINOv3", "dinov2": "DINOv2", "mae": "MAE", "_mim": "EVA02 MIM", "in21k": "ImageNet",
               "in1k": "ImageNet", "in22k": "ImageNet"}


@dataclass
class OpenClip:
    """An open_clip model with its tokenizer and config, as :func:`load_open_clip` reads it."""

    id: str
    model: nn.Module
    tokenizer: Any
    config: dict[str, Any]


def _open_clip():
    try:
        return importlib.import_module("open_clip")
    except ImportError:
        raise ConfigError("zero-shot classification needs open_clip: pip install 'laps[zeroshot]'") from None


def _no_text_tower(name: str) -> str:
    kind = next((label for key, label in _IMAGE_ONLY.items() if key in name.lower()), "an image-only")
    return (f"{name} is {'a ' + kind if kind != 'an image-only' else kind} image model with no text tower, so it "
            "cannot name classes it was not trained on; use a CLIP-family open_clip model (CLIP, SigLIP, "
            "EVA02-CLIP, PE core) as hf-hub:ORG/REPO or local-dir:PATH, or train a head on labelled videos")


def is_open_clip_id(source: str | Path) -> bool:
    """Whether ``source`` names an open_clip model (see the module) rather than a laps checkpoint."""
    text = str(source)
    return text.startswith(("hf-hub:", "local-dir:")) or (Path(text) / CONFIG_FILE).is_file()


def resolve_id(source: str | Path) -> str:
    """The open_clip id of ``source`` (see the module); a one-line refusal for anything else."""
    text = str(source)
    if text.startswith("hf-hub:"):
        repo = text[len("hf-hub:"):]
        if any(key in repo.lower() for key in _IMAGE_ONLY):
            raise UnsupportedBackboneError(_no_text_tower(repo))
        return text
    folder = Path(text.removeprefix("local-dir:"))
    if (folder / CONFIG_FILE).is_file():
        return f"local-dir:{folder}"
    if folder.is_dir():
        what = "a laps model (its head is already set; use it without --labels)" if (folder / "config.json").is_file() \
            else "no open_clip model"
        raise CheckpointError(f"{folder} holds {what}: a zero-shot model needs a folder with {CONFIG_FILE}")
    if timm.is_model(split_model_name_tag(text)[0]):
        raise UnsupportedBackboneError(_no_text_tower(text))
    raise CheckpointError(f"{text!r} is neither hf-hub:ORG/REPO, local-dir:PATH nor a folder with {CONFIG_FILE}")


def read_config(model_id: str) -> dict[str, Any]:
    """The ``open_clip_config.json`` of an open_clip id (``model_cfg`` and ``preprocess_cfg``); a hub
    id's comes from the hub (or its local cache)."""
    _open_clip()
    try:
        if model_id.startswith("local-dir:"):
            path = Path(model_id.removeprefix("local-dir:")) / CONFIG_FILE
        else:
            from open_clip.pretrained import download_pretrained_from_hf

            path = download_pretrained_from_hf(model_id.removeprefix("hf-hub:"), filename=CONFIG_FILE)
        raw = json.loads(Path(path).read_text(encoding="utf-8"))
    except Exception as err:  # noqa: BLE001 - the hub's and the file's failures become one line
        raise CheckpointError(f"cannot read the open_clip config of {model_id}: {str(err).splitlines()[0]}") from err
    if not isinstance(raw, dict) or "model_cfg" not in raw:
        raise CheckpointError(f"the {CONFIG_FILE} of {model_id} has no model_cfg; is it an open_clip model?")
    if natively_quickgelu(model_id):
        raw["model_cfg"]["quick_gelu"] = True
    return raw


def natively_quickgelu(model_id: str) -> bool:
    """Whether ``hf-hub:timm/NAME.TAG`` holds weights trained with QuickGELU: timm has them under the
    ``_quickgelu`` variant of NAME too (OpenAI's and MetaCLIP's CLIP weights), whatever the repo's
    config says; such a model is built with QuickGELU, its text tower too."""
    name, _, tag = model_id.removeprefix("hf-hub:timm/").partition(".")
    quick = name.replace("_clip_", "_clip_quickgelu_", 1)
    return model_id.startswith("hf-hub:timm/") and bool(tag) and quick != name and \
        f"{quick}.{tag}" in timm.list_pretrained(f"{quick}.{tag}")


def feed_of(config: dict[str, Any]) -> dict[str, Any]:
    """How open_clip feeds the model of ``config`` (``size``, ``mean``, ``std``, ``interpolation``): its
    ``preprocess_cfg`` over open_clip's defaults (OpenAI CLIP's mean and std, bicubic)."""
    from open_clip.transform import PreprocessCfg, merge_preprocess_dict

    return merge_preprocess_dict(PreprocessCfg(), config.get("preprocess_cfg", {}))


def load_open_clip(source: str | Path) -> OpenClip:
    """The open_clip model (eval, CPU), tokenizer and config of ``source`` (see :func:`resolve_id`)."""
    open_clip = _open_clip()
    model_id = resolve_id(source)
    config = read_config(model_id)
    try:
        model = open_clip.create_model(model_id, device="cpu",
                                       force_quick_gelu=config["model_cfg"].get("quick_gelu", False)).eval()
        tokenizer = open_clip.get_tokenizer(model_id)
    except Exception as err:  # noqa: BLE001 - open_clip's and the hub's failures become one line
        raise CheckpointError(f"open_clip could not load {model_id}: {str(err).splitlines()[0]}") from err
    if not hasattr(model, "encode_text"):
        raise UnsupportedBackboneError(_no_text_tower(model_id))
    return OpenClip(model_id, model, tokenizer, config)


def text_embeddings(clip: OpenClip, classes: Sequence[str], templates: Sequence[str] | None = None) -> torch.Tensor:
    """Unit class text embeddings ``(K, D)``: open_clip's ``build_zero_shot_classifier`` (its
    ``(D, K)`` output, transposed) over ``templates`` (default :data:`VIDEO_TEMPLATES`)."""
    classes = [str(name) for name in classes]
    if not classes or len(set(classes)) != len(classes) or not all(name.strip() for name in classes):
        raise ConfigError(f"class names must be non-empty and distinct, got {classes!r}")
    templates = check_templates(list(templates or VIDEO_TEMPLATES))
    from open_clip import build_zero_shot_classifier

    return build_zero_shot_classifier(clip.model, clip.tokenizer, classes, templates, device="cpu").T.contiguous()


def logit_scale_and_bias(clip: OpenClip) -> tuple[float, float]:
    """CLIP's logit scale (``exp`` of the learned log scale) and SigLIP's logit bias (0 without one)."""
    bias = getattr(clip.model, "logit_bias", None)
    return clip.model.logit_scale.detach().exp().item(), 0.0 if bias is None else bias.detach().item()


def zero_shot(source: str | Path | OpenClip, classes: Sequence[str], templates: Sequence[str] | None = None,
              temporal: str = "laps", num_frames: int = 8, levels: list[int | None] | None = None,
              fold_div: int = 4, **timm_kwargs: Any) -> VideoClassifier:
    """A video classifier for ``classes`` with no training, in eval mode on the CPU.

    ``source``: an open_clip id (see the module), or an :class:`OpenClip` already loaded. Its image tower becomes a timm model (weights through
    timm's checkpoint filter), converted to ``temporal`` over ``num_frames`` frames as
    :func:`laps.create_model` does (``timm_kwargs``, e.g. ``drop_path_rate``, go to timm); its head is a
    :class:`~laps.models.text_head.TextHead` whose logits are
    ``logit_scale * cos(frame embedding, class text embedding) + bias``, averaged over the frames. The
    model saves, loads, exports and extracts features as any laps model.
    """
    clip = source if isinstance(source, OpenClip) else load_open_clip(source)
    video_cfg = video_config(clip.id, clip.config, len(classes), temporal, num_frames, levels, fold_div, timm_kwargs)
    weights = text_embeddings(clip, classes, templates)
    backbone = image_model(video_cfg)
    visual = {key: value for key, value in clip.model.state_dict().items() if key.startswith("visual.")}
    backbone.load_state_dict(adapt_state_dict(visual, backbone), strict=True)
    model = VideoClassifier(backbone, video_cfg.updated(img_size=image_size(backbone), classes=list(classes)))
    model.backbone.get_classifier().set_text(weights, *logit_scale_and_bias(clip))
    return model.eval()


def relabel(model: VideoClassifier, clip: OpenClip, classes: Sequence[str],
            templates: Sequence[str] | None = None) -> None:
    """Make the zero-shot ``model`` (built by :func:`zero_shot` from ``clip``) a classifier of ``classes``
    instead, in place: a new text classifier (on the model's device), its config's classes replaced."""
    weights = text_embeddings(clip, classes, templates)
    head = model.backbone.get_classifier()
    device = head.classifier.weight.device
    head.classifier = nn.Linear(weights.shape[1], len(classes), device=device)
    head.set_text(weights.to(device), *logit_scale_and_bias(clip))
    model.video_cfg = model.video_cfg.updated(num_classes=len(classes), classes=list(classes))


def text_head_model(source: str | Path, num_classes: int, temporal: str = "laps", num_frames: int = 8,
                    levels: list[int | None] | None = None, fold_div: int = 4, **timm_kwargs: Any) -> VideoClassifier:
    """The architecture of :func:`zero_shot` for ``num_classes`` classes, with random weights, from the
    open_clip config alone (no weights read; e.g. to load a training checkpoint into)."""
    model_id = resolve_id(source)
    video_cfg = video_config(model_id, read_config(model_id), num_classes, temporal, num_frames, levels, fold_div,
                             timm_kwargs)
    backbone = image_model(video_cfg)
    return VideoClassifier(backbone, video_cfg.updated(img_size=image_size(backbone)))


def video_config(model_id: str, config: dict[str, Any], num_classes: int, temporal: str, num_frames: int,
                 levels: list[int | None] | None, fold_div: int, timm_kwargs: dict[str, Any]) -> VideoConfig:
    """The ``video_cfg`` of a text-head model over the image tower of open_clip ``config``."""
    tower = image_tower(config["model_cfg"], model_id)
    reason = refusal(tower.backbone)
    if reason:
        raise UnsupportedBackboneError(f"{model_id}: {reason}")
    feed = feed_of(config)
    size = feed["size"]
    return VideoConfig(backbone=tower.backbone, temporal=temporal, num_frames=num_frames, num_classes=num_classes,
                       img_size=size if isinstance(size, int) else size[-1], mean=feed["mean"], std=feed["std"],
                       interpolation=feed["interpolation"], levels=levels, fold_div=fold_div,
                       timm_kwargs={**tower.timm_kwargs, **timm_kwargs}, head="text", projection=tower.projection)
