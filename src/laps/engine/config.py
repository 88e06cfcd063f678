"""Typed run configuration: dataclass defaults <- YAML file (and the files it is ``base:``d on)
<- ``section.key=value`` overrides, through OmegaConf structured configs.

OmegaConf checks keys and converts types (``optim.lr=5e-4`` is a float, ``data.num_workers`` takes
``auto`` or an integer); :func:`validate` then checks choices and ranges. Every error is one line
that names the key.

A recipe can build on another: a top-level ``base: other.yaml`` (relative to the file) loads that
file first, and the recipe's own values override it.
"""

from __future__ import annotations

import dataclasses
import difflib
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import ConfigKeyError, OmegaConfBaseException

from laps.data.sampling import SAMPLINGS
from laps.data.transforms import NORMS, default_scale_range
from laps.errors import ConfigError
from laps.models.temporal import VARIANTS

#: the optimisers, LR schedules, AMP modes and devices the trainer implements
OPTIMIZERS = ("adamw", "sgd")
SCHEDULES = ("cosine", "step", "constant")
AMP_MODES = ("none", "bf16", "fp16")
DEVICES = ("auto", "cpu", "cuda")
#: the key of a recipe file that names the recipe it builds on
BASE_KEY = "base"


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
    scale_min: int | None = None  # training short-side jitter; None: 8/7 of model.img_size (256 for 224)
    scale_max: int | None = None  # None: 10/7 of model.img_size (320 for 224)
    flip: bool = True
    norm: str = "auto"  # "auto": the mean and std of the backbone's timm weights (their pretrained_cfg)
    num_workers: int | str = "auto"  # "auto": the cores of this process, shared by the node's processes
    val_views: str = "1x1"
    max_broken_share: float = 0.05  # unreadable / missing videos a split may hold before the run stops


@dataclass
class OptimConfig:
    # defaults: the from-scratch recipe measured on a small camera-motion set (configs/scratch_small.yaml)
    optimizer: str = "adamw"
    lr: float = 1e-3
    weight_decay: float = 0.05
    momentum: float = 0.9
    schedule: str = "cosine"
    warmup_epochs: float = 2.0
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
    max_bad_steps: int = 10  # optimizer steps in a row with a non-finite loss or gradient that stop the run; 0: never
    precise_bn_iters: int = 0  # batches that recompute BatchNorm statistics before each evaluation; 0: off


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
    "data.sampling": SAMPLINGS,
    "data.norm": ("auto", *NORMS),
    "optim.optimizer": OPTIMIZERS,
    "optim.schedule": SCHEDULES,
    "runtime.amp": AMP_MODES,
    "runtime.device": DEVICES,
}
POSITIVE = ("model.num_frames", "model.img_size", "data.sampling_rate", "optim.epochs", "optim.batch_size",
            "optim.accum_steps", "runtime.eval_every", "model.fold_div")
NON_NEGATIVE = ("optim.lr", "optim.weight_decay", "optim.warmup_epochs", "optim.clip_grad", "optim.mixup",
                "optim.cutmix", "runtime.threads", "optim.ema_decay", "model.drop_path", "optim.precise_bn_iters",
                "optim.max_bad_steps", "data.max_broken_share")


def _get(config: Config, key: str) -> Any:
    section, name = key.split(".")
    return getattr(getattr(config, section), name)


def validate(config: Config) -> Config:
    """Check choices and ranges; raise ConfigError naming the key."""
    for key, allowed in CHOICES.items():
        if _get(config, key) not in allowed:
            raise ConfigError(f"{key}={_get(config, key)!r} is not allowed; choose one of {', '.join(allowed)}")
    for key in POSITIVE + NON_NEGATIVE:
        if _get(config, key) < (1 if key in POSITIVE else 0):
            raise ConfigError(f"{key}={_get(config, key)!r} must be {'>= 1' if key in POSITIVE else '>= 0'}")
    workers = config.data.num_workers
    if workers != "auto" and not (isinstance(workers, int) and workers >= 0):
        raise ConfigError(f"data.num_workers={workers!r} must be 'auto' or an integer >= 0")
    if config.data.max_broken_share > 1:
        raise ConfigError(f"data.max_broken_share={config.data.max_broken_share} is a share of the split: 0 to 1")
    low, high = scale_range(config)
    if low > high:
        raise ConfigError(f"data.scale_min ({low}) must be <= data.scale_max ({high})")
    if config.data.scale_min is not None and config.data.scale_min < config.model.img_size:
        raise ConfigError(
            f"data.scale_min={config.data.scale_min} is smaller than model.img_size={config.model.img_size}; "
            "the short side must be at least the crop size"
        )
    return config


def scale_range(config: Config) -> tuple[int, int]:
    """The training short-side jitter: ``data.scale_min/max``, each defaulting to its end of
    :func:`~laps.data.transforms.default_scale_range` of ``model.img_size``."""
    low, high = default_scale_range(config.model.img_size)
    d = config.data
    return (low if d.scale_min is None else d.scale_min), (high if d.scale_max is None else d.scale_max)


def _keys() -> list[str]:
    return [f"{section.name}.{f.name}" for section in dataclasses.fields(Config)
            for f in dataclasses.fields(section.default_factory())]


def _one_line(err: Exception, source: str = "", override: str = "") -> ConfigError:
    """OmegaConf's or YAML's error (several lines: message, full_key, types) -> one line naming the
    key, after the ``source`` it came from (a file, ``config file X: ``); an error of the
    ``override`` key that names no key (a YAML syntax error) names the override."""
    key = getattr(err, "full_key", None) or ""
    if isinstance(err, ConfigKeyError):
        close = difflib.get_close_matches(key, _keys(), n=1) or [k for k in _keys() if k.endswith("." + key)][:1]
        hint = f"; did you mean {close[0]}?" if close else f"; allowed keys: {', '.join(_keys())}"
        return ConfigError(f"{source}unknown config key {key!r}{hint}")
    message = str(err).splitlines()[0]
    if not key and override:
        key = f"override {override}"
    return ConfigError(f"{source}{key}: {message}" if key else f"{source}{message}")


def _file_layers(path: Path, seen: tuple[Path, ...] = ()) -> list[tuple[tuple[str, str], DictConfig]]:
    """The YAML file at ``path`` after the chain of files it is based on, oldest first, each with
    where it came from for error messages (see :func:`_one_line`)."""
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist")
    if path.resolve() in seen:
        raise ConfigError(f"config file {path} is its own base (a cycle of '{BASE_KEY}:' entries)")
    try:
        layer = OmegaConf.load(path)  # a safe YAML loader: plain values only
    except yaml.constructor.ConstructorError as err:
        raise ConfigError(f"config file {path}: the YAML tag {err.problem.split()[-1] if err.problem else ''} is "
                          "refused; configs hold plain values only (no tags that build Python objects)") from None
    except (yaml.YAMLError, OmegaConfBaseException, UnicodeDecodeError) as err:
        raise ConfigError(f"config file {path} is not valid YAML: {str(err).splitlines()[0]}") from None
    except OSError as err:  # OmegaConf's word for a file that holds a number, a string or a list
        raise ConfigError(f"config file {path} must hold a mapping of sections ({err})") from None
    if not isinstance(layer, DictConfig):
        raise ConfigError(f"config file {path} must hold a mapping of sections")
    base = layer.pop(BASE_KEY, None)
    if base is not None and not isinstance(base, str):
        raise ConfigError(f"config file {path}: '{BASE_KEY}:' must be the path of another recipe, got {base!r}")
    for section, values in layer.items():
        if not isinstance(values, DictConfig):
            raise ConfigError(f"config file {path}: section {section!r} must be a mapping of key: value")
    below = _file_layers(path.parent / base, (*seen, path.resolve())) if base else []
    return [*below, ((f"config file {path}: ", ""), layer)]


def _is_list(key: str) -> bool:
    """Whether ``section.name`` is a list field of the config."""
    section, _, name = key.partition(".")
    fields = {f.name: f for f in dataclasses.fields(Config)}
    if section not in fields or not name:
        return False
    hint = typing.get_type_hints(fields[section].default_factory).get(name)
    return hint is not None and (typing.get_origin(hint) is list or
                                 any(typing.get_origin(a) is list for a in typing.get_args(hint)))


def _override_layer(key: str, value: Any) -> DictConfig:
    """One ``section.key`` override: a string as on a command line (YAML syntax: ``[1, 2]``,
    ``null``; for a list field ``2,3`` means ``[2,3]`` too), anything else as it is."""
    if not isinstance(value, str) or not value:  # "" is a value here (e.g. model.pretrained=: none), not null
        return OmegaConf.create({key.split(".")[0]: {key.split(".", 1)[1]: value}} if "." in key else {key: value})
    if _is_list(key) and "," in value and not value.lstrip().startswith("["):
        value = f"[{value}]"
    return OmegaConf.from_dotlist([f"{key}={value}"])


def load_config(path: str | Path | None = None, overrides: dict[str, Any] | list[str] | None = None) -> Config:
    """Defaults, then the YAML file at ``path`` (nested sections; ``base:`` chains), then
    ``overrides`` (``{"optim.lr": 0.1}`` or ``["optim.lr=0.1", "optim.epochs=3"]``), validated."""
    if isinstance(overrides, list):
        overrides = parse_overrides(overrides)
    merged = OmegaConf.structured(Config)
    layers = _file_layers(Path(path)) if path else []
    for key, value in (overrides or {}).items():
        if value is not None:
            layers.append((("", key), lambda key=key, value=value: _override_layer(key, value)))
    for where, layer in layers:
        try:
            merged = OmegaConf.merge(merged, layer() if callable(layer) else layer)
        except (OmegaConfBaseException, yaml.YAMLError) as err:
            raise _one_line(err, *where) from None
    try:
        config = OmegaConf.to_object(merged)
    except OmegaConfBaseException as err:
        raise _one_line(err) from None
    return validate(config)


def parse_overrides(items: list[str]) -> dict[str, str]:
    """``["optim.lr=0.1", "optim.epochs=3"]`` -> ``{"optim.lr": "0.1", "optim.epochs": "3"}``."""
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
    try:
        config = OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(Config), raw))
    except OmegaConfBaseException as err:
        raise _one_line(err, "config: ") from None
    return validate(config)
