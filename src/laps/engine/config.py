"""Typed run configuration: dataclass defaults <- YAML file <- ``section.key=value`` overrides.

Every value is validated up front; errors name the key and what is allowed.
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from laps.errors import ConfigError
from laps.models.temporal import VARIANTS


@dataclass
class ModelConfig:
    backbone: str = "vit_tiny_patch16_224"
    temporal: str = "laps"
    num_frames: int = 8
    img_size: int = 224
    patch_size: int | None = None
    depth: int | None = None
    embed_dim: int | None = None
    num_heads: int | None = None
    global_pool: str = ""  # "" = the backbone's default; "avg" or "token" for ViTs
    pretrained: str = ""  # "" none, "timm" hub weights, or a path to a 2D checkpoint
    levels: list[int | None] | None = None
    fold_div: int = 4
    drop_path: float = 0.0


@dataclass
class DataConfig:
    root: str = ""
    train_list: str = ""
    val_list: str = ""
    format: str = "auto"
    classes: str = ""  # classes.json; default: <root>/classes.json if present
    sampling: str = "dense"
    sampling_rate: int = 8
    scale_min: int = 256
    scale_max: int = 320
    flip: bool = True
    norm: str = "imagenet"
    num_workers: int | str = "auto"  # "auto": the cores of this process, shared by the node's processes
    val_views: str = "1x1"


@dataclass
class OptimConfig:
    optimizer: str = "adamw"
    lr: float = 1e-3
    weight_decay: float = 0.05
    momentum: float = 0.9
    schedule: str = "cosine"
    warmup_epochs: float = 0.0
    milestones: list[int] = field(default_factory=list)
    gamma: float = 0.1
    epochs: int = 10
    batch_size: int = 8
    accum_steps: int = 1
    clip_grad: float = 0.0
    label_smoothing: float = 0.0
    mixup: float = 0.0
    cutmix: float = 0.0
    layer_decay: float = 1.0
    ema_decay: float = 0.0


@dataclass
class RuntimeConfig:
    output: str = "runs/train"
    seed: int = 0
    device: str = "auto"
    threads: int = 0  # torch intra-op threads; 0 = torch's default
    amp: str = "none"
    compile: bool = False
    progress: bool = True
    eval_every: int = 1


@dataclass
class Config:
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    runtime: RuntimeConfig = field(default_factory=RuntimeConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


CHOICES = {
    "model.temporal": tuple(VARIANTS),
    "data.sampling": ("dense", "segment"),
    "data.norm": ("imagenet", "half", "visformer"),
    "optim.optimizer": ("adamw", "sgd"),
    "optim.schedule": ("cosine", "step", "constant"),
    "runtime.amp": ("none", "bf16", "fp16"),
    "runtime.device": ("auto", "cpu", "cuda"),
}
POSITIVE = ("model.num_frames", "model.img_size", "data.sampling_rate", "optim.epochs", "optim.batch_size",
            "optim.accum_steps", "runtime.eval_every", "model.fold_div")
NON_NEGATIVE = ("optim.lr", "optim.weight_decay", "optim.warmup_epochs", "optim.clip_grad", "optim.mixup",
                "optim.cutmix", "runtime.threads", "optim.ema_decay", "model.drop_path")


def _sections(config: Config) -> dict[str, Any]:
    return {f.name: getattr(config, f.name) for f in dataclasses.fields(config)}


def _all_keys() -> list[str]:
    return [f"{name}.{f.name}" for name, section in _sections(Config()).items() for f in dataclasses.fields(section)]


def _resolve_key(key: str) -> tuple[str, str]:
    """``section.key`` or a unique bare ``key`` -> (section, key)."""
    keys = _all_keys()
    if key in keys:
        section, name = key.split(".", 1)
        return section, name
    matches = [k for k in keys if k.split(".", 1)[1] == key]
    if len(matches) == 1:
        return tuple(matches[0].split(".", 1))  # type: ignore[return-value]
    raise ConfigError(f"unknown config key {key!r}; allowed keys: {', '.join(keys)}")


def _coerce(key: str, value: Any, annotation: Any) -> Any:
    """Convert ``value`` (from YAML or a string override) to the field's type, or raise."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        if value is None or (isinstance(value, str) and value.lower() in ("none", "null", "")):
            if type(None) in args:
                return None
        inner = [a for a in args if a is not type(None)]
        for option in inner[:-1]:  # the first type the value converts to (int | str: "4" -> 4, "auto")
            try:
                return _coerce(key, value, option)
            except ConfigError:
                pass
        return _coerce(key, value, inner[-1])
    if origin is list:
        if isinstance(value, str):
            value = yaml.safe_load(value) if value.strip().startswith("[") else [v for v in value.split(",") if v]
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key} must be a list, got {value!r}")
        return [_coerce(key, v, args[0]) if args else v for v in value]
    if annotation is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "yes", "1", "on", "false", "no", "0", "off"):
            return value.lower() in ("true", "yes", "1", "on")
        raise ConfigError(f"{key} must be true or false, got {value!r}")
    if annotation in (int, float):
        try:
            number = yaml.safe_load(value) if isinstance(value, str) else value
            if isinstance(number, bool) or not isinstance(number, (int, float)):
                raise ValueError
            if annotation is int and float(number) != int(number):
                raise ValueError
            return annotation(number)
        except (ValueError, yaml.YAMLError):
            raise ConfigError(f"{key} must be {'an integer' if annotation is int else 'a number'}, got {value!r}") from None
    if annotation is str:
        if isinstance(value, (dict, list)):
            raise ConfigError(f"{key} must be a string, got {value!r}")
        return str(value)
    return value


def _set(config: Config, key: str, value: Any) -> None:
    section_name, name = _resolve_key(key)
    section = getattr(config, section_name)
    hints = typing.get_type_hints(type(section))
    setattr(section, name, _coerce(f"{section_name}.{name}", value, hints[name]))


def validate(config: Config) -> Config:
    """Check choices and ranges; raise ConfigError naming the key."""
    for key, allowed in CHOICES.items():
        section, name = key.split(".")
        value = getattr(getattr(config, section), name)
        if value not in allowed:
            raise ConfigError(f"{key}={value!r} is not allowed; choose one of {', '.join(allowed)}")
    for key in POSITIVE + NON_NEGATIVE:
        section, name = key.split(".")
        value = getattr(getattr(config, section), name)
        if value < (1 if key in POSITIVE else 0):
            raise ConfigError(f"{key}={value!r} must be {'>= 1' if key in POSITIVE else '>= 0'}")
    workers = config.data.num_workers
    if workers != "auto" and not (isinstance(workers, int) and workers >= 0):
        raise ConfigError(f"data.num_workers={workers!r} must be 'auto' or an integer >= 0")
    if config.data.scale_min > config.data.scale_max:
        raise ConfigError("data.scale_min must be <= data.scale_max")
    if config.data.scale_min < config.model.img_size:
        raise ConfigError(
            f"data.scale_min={config.data.scale_min} is smaller than model.img_size={config.model.img_size}; "
            "the short side must be at least the crop size"
        )
    return config


def _apply(config: Config, raw: dict[str, Any], where: str) -> Config:
    """Set every ``{section: {key: value}}`` entry of ``raw`` on ``config``."""
    for section, values in raw.items():
        if not isinstance(values, dict):
            raise ConfigError(f"{where}: section {section!r} must be a mapping of key: value")
        for key, value in values.items():
            _set(config, f"{section}.{key}", value)
    return config


def load_config(path: str | Path | None = None, overrides: dict[str, Any] | list[str] | None = None) -> Config:
    """Defaults, then the YAML file at ``path`` (nested sections), then ``overrides``
    (``{"optim.lr": 0.1}`` or ``["optim.lr=0.1", "epochs=3"]``), validated."""
    config = Config()
    if path:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"config file {path} does not exist")
        raw = yaml.safe_load(path.read_text()) or {}
        if not isinstance(raw, dict):
            raise ConfigError(f"config file {path} must hold a mapping of sections")
        _apply(config, raw, f"config file {path}")
    if isinstance(overrides, list):
        overrides = parse_overrides(overrides)
    for key, value in (overrides or {}).items():
        if value is not None:
            _set(config, key, value)
    return validate(config)


def parse_overrides(items: list[str]) -> dict[str, str]:
    """``["optim.lr=0.1", "epochs=3"]`` -> ``{"optim.lr": "0.1", "epochs": "3"}``."""
    pairs = {}
    for item in items:
        if "=" not in item:
            raise ConfigError(f"override {item!r} must look like key=value, e.g. optim.lr=0.01")
        key, value = item.split("=", 1)
        pairs[key.strip()] = value
    return pairs


def save_config(config: Config, path: str | Path) -> None:
    Path(path).write_text(yaml.safe_dump(config.to_dict(), sort_keys=False))


def config_from_dict(raw: dict[str, Any]) -> Config:
    """Rebuild a Config from :meth:`Config.to_dict` output (e.g. a run's ``config.yaml``)."""
    return validate(_apply(Config(), raw, "config"))
