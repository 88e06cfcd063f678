"""Typed run configuration: dataclass defaults <- YAML file (and the files it is ``base:``d on)
<- ``section.key=value`` overrides, through OmegaConf structured configs.

OmegaConf parses the values (YAML syntax: ``optim.milestones=[10,15]``, ``model.levels=[1,null]``),
rejects unknown keys and converts types; each section's ``__post_init__`` then checks its choices and
ranges when the config is built. Every error is one line that names the key.

A recipe can build on others: a top-level ``base: other.yaml`` (relative to the file), or a list
``base: [a.yaml, b.yaml]`` merged in that order, is loaded first, and the recipe's own values
override it. A recipe is named by its path or, for the recipes shipped with laps, by its name
(:mod:`laps.engine.recipes`).
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import functools
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from omegaconf import DictConfig, ListConfig, OmegaConf
from omegaconf.errors import ConfigKeyError, OmegaConfBaseException

from laps.atomic import write_text_atomic
from laps.engine.recipes import resolve_config
from laps.errors import ConfigError
from laps.infer.device import DEFAULT_DEVICE, check_device
from laps.samplings import DEFAULT_SAMPLING_RATE, check_sampling
from laps.variants import VARIANTS

#: the optimisers, LR schedules and AMP modes the trainer implements
OPTIMIZERS = ("adamw", "sgd")
SCHEDULES = ("cosine", "step", "constant")
AMP_MODES = ("none", "bf16", "fp16")
#: how ``torchrun`` processes share the model: replicated (DDP) or sharded (FSDP2)
STRATEGIES = ("ddp", "fsdp")
#: what ``optim.train`` accepts besides ``last:N``
TRAIN_PARTS = ("all", "head")
#: the key of a recipe file that names the recipe it builds on
BASE_KEY = "base"


def _choose(section: str, obj: object, **allowed: Iterable[str]) -> None:
    for name, choices in allowed.items():
        value = getattr(obj, name)
        if value not in tuple(choices):
            raise ConfigError(f"{section}.{name}={value!r} is not allowed; choose one of {', '.join(choices)}")


def _at_least(section: str, obj: object, low: int, *names: str) -> None:
    for name in names:
        if getattr(obj, name) < low:
            raise ConfigError(f"{section}.{name}={getattr(obj, name)!r} must be >= {low}")


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
    grad_checkpointing: bool = False  # recompute each block's activations in the backward pass: less memory, more time
    # "text": the head starts as the zero-shot classifier of the dataset's class names; backbone is then an
    # open_clip model (hf-hub:ORG/REPO, local-dir:PATH), fed as open_clip feeds it (needs laps[zeroshot])
    head_init: str = ""
    templates: str = ""  # head_init text: a prompt templates file, one per line with {} (default: video templates)

    def __post_init__(self) -> None:
        _choose("model", self, temporal=VARIANTS, head_init=("", "text"))
        _at_least("model", self, 1, "num_frames", "img_size", "fold_div")
        _at_least("model", self, 0, "drop_path")


@dataclass
class DataConfig:
    root: str = ""
    train_list: str = ""
    val_list: str = ""
    format: str = "auto"
    classes: str = ""  # classes.json; default: <root>/classes.json if present
    sampling: str = "dense"
    sampling_rate: int = DEFAULT_SAMPLING_RATE
    scale_min: int | None = None  # training short-side jitter; None: 8/7 of model.img_size (256 for 224)
    scale_max: int | None = None  # None: 10/7 of model.img_size (320 for 224)
    flip: bool = True
    norm: str = "auto"  # "auto": the mean and std of the backbone's timm weights (their pretrained_cfg)
    num_workers: int | str = "auto"  # "auto": the cores of this process, shared by the node's processes
    val_views: str = "1x1"
    max_broken_share: float = 0.05  # unreadable / missing videos a split may hold before the run stops
    loader_timeout: float = 600.0  # seconds the loader's workers may take for one batch before the run stops; 0: no limit

    def __post_init__(self) -> None:
        check_sampling(self.sampling)
        if self.norm != "auto":  # the presets live with the models (torch, timm): read only when named
            from laps.models.feed import norm_presets

            _choose("data", self, norm=("auto", *norm_presets()))
        _at_least("data", self, 1, "sampling_rate")
        workers = self.num_workers
        if workers != "auto" and not (isinstance(workers, int) and workers >= 0):
            raise ConfigError(f"data.num_workers={workers!r} must be 'auto' or an integer >= 0")
        _at_least("data", self, 0, "loader_timeout")
        if not 0 <= self.max_broken_share <= 1:
            raise ConfigError(f"data.max_broken_share={self.max_broken_share} is a share of the split: 0 to 1")


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
    layer_decay: float = 1.0  # LR scale per block from the head down (timm's layer decay); 1: off
    ema_decay: float = 0.0
    max_bad_steps: int = 10  # optimizer steps in a row with a non-finite loss or gradient that stop the run; 0: never
    precise_bn_iters: int = 0  # batches that recompute BatchNorm statistics before each evaluation; 0: off
    train: str = "all"  # "all", "head" (a linear probe on frozen features) or "last:N" (the last N blocks + head)

    def __post_init__(self) -> None:
        _choose("optim", self, optimizer=OPTIMIZERS, schedule=SCHEDULES)
        _at_least("optim", self, 1, "epochs", "batch_size", "accum_steps")
        _at_least("optim", self, 0, "lr", "weight_decay", "warmup_epochs", "clip_grad", "mixup", "cutmix",
                  "ema_decay", "precise_bn_iters", "max_bad_steps")
        if not 0 < self.layer_decay <= 1:
            raise ConfigError(f"optim.layer_decay={self.layer_decay} must be in (0, 1]; 1 turns it off")
        trained_blocks(self.train)


@dataclass
class RuntimeConfig:
    output: str = "runs/train"
    seed: int = 0
    device: str = DEFAULT_DEVICE
    threads: int | str = "auto"  # torch CPU threads; "auto": this process's cores, shared by the node's processes
    amp: str = "none"
    strategy: str = "ddp"  # under torchrun: "ddp" a full copy per process, "fsdp" sharded (FSDP2)
    compile: bool = False
    progress: bool = True
    eval_every: int = 1
    log_every_s: float = 30.0  # seconds between progress lines when stderr is not a terminal (a log file)

    def __post_init__(self) -> None:
        _choose("runtime", self, amp=AMP_MODES, strategy=STRATEGIES)
        check_device(self.device)
        if self.strategy == "fsdp" and self.amp == "fp16":
            raise ConfigError("runtime.strategy=fsdp trains in runtime.amp=bf16 or none, not fp16 (its loss scaler "
                              "does not take sharded gradients); use runtime.amp=bf16")
        _at_least("runtime", self, 1, "eval_every")
        _at_least("runtime", self, 0, "log_every_s")
        if self.threads != "auto" and not (isinstance(self.threads, int) and self.threads >= 1):
            raise ConfigError(f"runtime.threads={self.threads!r} must be 'auto' or an integer >= 1")


@dataclass
class Config:
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    runtime: RuntimeConfig = field(default_factory=RuntimeConfig)

    def __post_init__(self) -> None:
        low, high = scale_range(self)
        if low > high:
            raise ConfigError(f"data.scale_min ({low}) must be <= data.scale_max ({high})")
        if self.data.scale_min is not None and self.data.scale_min < self.model.img_size:
            raise ConfigError(
                f"data.scale_min={self.data.scale_min} is smaller than model.img_size={self.model.img_size}; "
                "the short side must be at least the crop size"
            )

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def trained_blocks(train: str) -> int | None:
    """``optim.train`` -> how many of the last blocks train: ``None`` for all of them, 0 for the head
    only, N for ``last:N``; a ConfigError for anything else."""
    if train in TRAIN_PARTS:
        return None if train == "all" else 0
    count = train.removeprefix("last:")
    if train.startswith("last:") and count.isdigit() and int(count) >= 1:
        return int(count)
    raise ConfigError(f"optim.train={train!r} is not allowed; choose all, head or last:N with N >= 1 blocks")


def scale_range(config: Config) -> tuple[int, int]:
    """The training short-side jitter: ``data.scale_min/max``, each defaulting to its end of
    :func:`~laps.data.transforms.default_scale_range` of ``model.img_size``."""
    from laps.data.transforms import default_scale_range

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
    if "is not a ListConfig" in message:
        message = "takes a list, written in brackets: [1,2]"
    if not key and override:
        key = f"override {override}"
    return ConfigError(f"{source}{key}: {message}" if key else f"{source}{message}")


def _load_yaml(path: Path) -> DictConfig:
    """One recipe file, as OmegaConf reads it (a safe YAML loader: plain values only)."""
    try:
        layer = OmegaConf.load(path)
    except yaml.constructor.ConstructorError as err:
        raise ConfigError(f"config file {path}: the YAML tag {err.problem.split()[-1] if err.problem else ''} is "
                          "refused; configs hold plain values only (no tags that build Python objects)") from None
    except (yaml.YAMLError, OmegaConfBaseException, UnicodeDecodeError) as err:
        raise ConfigError(f"config file {path} is not valid YAML: {str(err).splitlines()[0]}") from None
    except OSError as err:  # OmegaConf's word for a file that holds a number, a string or a list
        raise ConfigError(f"config file {path} must hold a mapping of sections ({err})") from None
    if not isinstance(layer, DictConfig):
        raise ConfigError(f"config file {path} must hold a mapping of sections")
    for section, values in layer.items():
        if section != BASE_KEY and not isinstance(values, DictConfig):
            raise ConfigError(f"config file {path}: section {section!r} must be a mapping of key: value")
    return layer


def _file_layers(path: Path, seen: tuple[Path, ...] = ()) -> list[tuple[str, DictConfig]]:
    """The YAML file at ``path`` after the files it is based on (``base:`` one path, or a list
    merged in order), oldest first, each after where it came from (for error messages)."""
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist")
    if path.resolve() in seen:
        raise ConfigError(f"config file {path} is its own base (a cycle of '{BASE_KEY}:' entries)")
    layer = _load_yaml(path)
    base = layer.pop(BASE_KEY, None)
    bases = [base] if isinstance(base, str) else OmegaConf.to_object(base) if isinstance(base, ListConfig) else base
    if bases is not None and not (isinstance(bases, list) and all(isinstance(b, str) for b in bases)):
        raise ConfigError(f"config file {path}: '{BASE_KEY}:' must be the path of another recipe or a list of "
                          f"them, got {base!r}")
    below = [below for b in bases or [] for below in _file_layers(path.parent / b, (*seen, path.resolve()))]
    return [*below, (f"config file {path}: ", layer)]


def _override(key: str, value: Any) -> DictConfig:
    """One ``section.key`` override: a string as on a command line (YAML syntax, read by
    ``from_dotlist``), anything else as it is. ``key=`` sets an empty string (``model.pretrained=``)."""
    if isinstance(value, str) and value:
        return OmegaConf.from_dotlist([f"{key}={value}"])
    layer = OmegaConf.create()
    OmegaConf.update(layer, key, value)
    return layer


@functools.cache
def _defaults() -> DictConfig:
    """The dataclass defaults as a structured config, built once: building one takes several times
    longer than copying it."""
    return OmegaConf.structured(Config)


def load_config(path: str | Path | None = None, overrides: dict[str, Any] | list[str] | None = None) -> Config:
    """Defaults, then the YAML file at ``path`` or the shipped recipe of that name (nested
    sections; ``base:`` chains), then ``overrides`` (``{"optim.lr": 0.1}`` or
    ``["optim.lr=0.1", "optim.epochs=3"]``; a ``None`` value is skipped), built and checked."""
    if isinstance(overrides, list):
        overrides = parse_overrides(overrides)
    files = _file_layers(resolve_config(path)) if path else []
    layers = [(source, "", lambda layer=layer: layer) for source, layer in files]
    layers += [("", key, lambda key=key, value=value: _override(key, value))
               for key, value in (overrides or {}).items() if value is not None]
    merged = copy.deepcopy(_defaults())
    for source, key, layer in layers:
        try:
            merged.merge_with(layer())  # in place: OmegaConf.merge would copy the whole config per layer
        except (OmegaConfBaseException, yaml.YAMLError) as err:
            raise _one_line(err, source, key) from None
    return _build(merged)


def _build(merged: DictConfig, source: str = "") -> Config:
    """The :class:`Config` object of a merged structured config (its sections' ``__post_init__``
    check the values)."""
    try:
        return OmegaConf.to_object(merged)
    except OmegaConfBaseException as err:
        raise _one_line(err, source) from None


def parse_overrides(items: list[str]) -> dict[str, str]:
    """``["optim.lr=0.1", "optim.epochs=3"]`` -> ``{"optim.lr": "0.1", "optim.epochs": "3"}``."""
    if bad := next((item for item in items if "=" not in item), None):
        raise ConfigError(f"override {bad!r} must look like key=value, e.g. optim.lr=0.01")
    return {key.strip(): value for key, value in (item.split("=", 1) for item in items)}


def save_config(config: Config, path: str | Path) -> None:
    """Write ``config`` as YAML, atomically (what :func:`load_config` reads back)."""
    write_text_atomic(path, yaml.safe_dump(config.to_dict(), sort_keys=False))

