"""The training run's YAML: one dataclass per section, dotted ``key=value`` overrides, paths
resolved against the config file. Every key is documented in docs/training.md."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from .freeze import DEFAULT_TRAINABLE, check_parts

LORA_TARGETS = ("wq", "wk", "wv", "wo", "w1", "w2", "w3")


@dataclass
class OptimConfig:
    """AdamW; linear warm-up to ``lr`` over ``warmup_steps`` (from ``lr / warmup_steps``), then a
    half-cosine to ``min_lr`` at the last step (``optim.lr_at``). ``clip_grad`` <= 0: no clipping."""

    lr: float = 2e-5
    min_lr: float = 0.0
    warmup_steps: int = 0
    weight_decay: float = 0.0
    betas: tuple[float, float] = (0.9, 0.95)
    clip_grad: float = 8.0

    def __post_init__(self) -> None:
        _numbers(self, float, "lr", "min_lr", "weight_decay", "clip_grad")
        _numbers(self, int, "warmup_steps")
        self.betas = tuple(float(b) for b in self.betas)
        if len(self.betas) != 2 or self.lr <= 0 or self.min_lr < 0 or self.warmup_steps < 0:
            raise ValueError("optim needs lr > 0, min_lr >= 0, warmup_steps >= 0 and two betas")


@dataclass
class LoraConfig:
    """Low-rank adapters on the LLM's linear layers: W x + (alpha / rank) B A dropout(x)."""

    rank: int = 8
    alpha: float = 16.0
    dropout: float = 0.0
    targets: tuple[str, ...] = ("wq", "wk", "wv", "wo")

    def __post_init__(self) -> None:
        _numbers(self, int, "rank")
        _numbers(self, float, "alpha", "dropout")
        self.targets = tuple(self.targets)
        unknown = [t for t in self.targets if t not in LORA_TARGETS]
        if unknown or not self.targets:
            raise ValueError(f"lora.targets must be a non-empty subset of {list(LORA_TARGETS)}, "
                             f"got {list(self.targets)}")
        if self.rank < 1 or not 0 <= self.dropout < 1:
            raise ValueError("lora needs rank >= 1 and 0 <= dropout < 1")

    @property
    def scale(self) -> float:
        return self.alpha / self.rank


@dataclass
class TrainConfig:
    model: str  # preset name (random init) or checkpoint directory (ours or released)
    data: Path  # data-mixture YAML
    out: Path  # run directory
    trainable: tuple[str, ...] = DEFAULT_TRAINABLE
    steps: int = 1000  # optimiser steps
    batch_size: int = 4  # per process and micro-batch
    grad_accum: int = 1
    max_length: int | None = None  # tokens per sequence, visual tokens included; None: no cut
    seed: int = 0
    optim: OptimConfig = field(default_factory=OptimConfig)
    precision: str | None = None  # fp32 | bf16; None: bf16 on CUDA, fp32 on CPU
    activation_checkpointing: bool = False
    save_every: int = 0  # steps between resumable checkpoints; 0: only at the end
    keep_last: int = 2  # resumable checkpoints kept
    resume: str = "auto"  # auto | none | a checkpoint directory
    lora: LoraConfig | None = None
    loss: str = "token"  # token: mean over a micro-batch's tokens; sample: mean of per-sample means
    device: str | None = None  # None: cuda if available, else cpu
    num_workers: int = 0  # DataLoader workers
    save_dtype: str | None = None  # dtype of out/final: float32 | bfloat16; None: bf16 iff precision bf16
    preset: str | None = None  # variant override for a released checkpoint (meta.json otherwise)
    grid: int | None = None  # sub-image views per side to train with; None: the model's own

    def __post_init__(self) -> None:
        _numbers(self, int, "steps", "batch_size", "grad_accum", "seed", "save_every", "keep_last",
                 "num_workers")
        if self.max_length is not None:
            _numbers(self, int, "max_length")
        if self.grid is not None:
            _numbers(self, int, "grid")
            if self.grid < 1:
                raise ValueError(f"grid must be >= 1, got {self.grid}")
        self.trainable = check_parts(self.trainable)
        if self.steps < 1 or self.batch_size < 1 or self.grad_accum < 1:
            raise ValueError("steps, batch_size and grad_accum must be >= 1")
        if self.precision not in (None, "fp32", "bf16"):
            raise ValueError(f"precision must be fp32 or bf16, got {self.precision!r}")
        if self.loss not in ("token", "sample"):
            raise ValueError(f"loss must be 'token' or 'sample', got {self.loss!r}")
        if self.save_dtype not in (None, "float32", "bfloat16"):
            raise ValueError(f"save_dtype must be float32 or bfloat16, got {self.save_dtype!r}")
        if self.save_every < 0 or self.keep_last < 1:
            raise ValueError("save_every must be >= 0 and keep_last >= 1")

    def to_dict(self) -> dict:
        data = dataclasses.asdict(self)
        data.update(data=str(self.data), out=str(self.out), trainable=list(self.trainable))
        data["optim"]["betas"] = list(self.optim.betas)
        if self.lora is not None:
            data["lora"]["targets"] = list(self.lora.targets)
        return data


def apply_overrides(data: dict, overrides: list[str]) -> dict:
    """``["optim.lr=1e-4", "lora.rank=4"]`` -> nested keys set; values parsed as YAML scalars."""
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise ValueError(f"override {item!r} is not key=value (e.g. optim.lr=1e-4)")
        node = data
        *parents, leaf = key.split(".")
        for part in parents:
            if node.get(part) is None:
                node[part] = {}
            node = node[part]
            if not isinstance(node, dict):
                raise ValueError(f"override {item!r}: {part!r} is not a section")
        node[leaf] = yaml.safe_load(raw)
    return data


def from_dict(data: dict, base: Path) -> TrainConfig:
    """Build and validate; relative ``model`` (unless a preset name), ``data`` and ``out`` paths
    resolve against ``base``. Unknown keys are errors that name the key."""
    from ..config import PRESET_NAMES

    data = dict(data)
    _check_keys(data, TrainConfig, "")
    for key in ("model", "data", "out"):
        if data.get(key) in (None, ""):
            raise ValueError(f"the training config needs '{key}'")
    if data["model"] not in PRESET_NAMES:
        data["model"] = str(_resolve(base, data["model"]))
    data["data"], data["out"] = _resolve(base, data["data"]), _resolve(base, data["out"])
    if data.get("resume") not in (None, "auto", "none"):
        data["resume"] = str(_resolve(base, data["resume"]))
    optim = data.get("optim") or {}
    _check_keys(optim, OptimConfig, "optim.")
    data["optim"] = OptimConfig(**optim)
    if data.get("lora") is not None:
        _check_keys(data["lora"], LoraConfig, "lora.")
        data["lora"] = LoraConfig(**data["lora"])
    if "trainable" in data:
        data["trainable"] = tuple(data["trainable"])
    return TrainConfig(**data)


def load_config(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> TrainConfig:
    path = Path(path)
    data = yaml.safe_load(path.read_text()) or {}
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping of training keys")
    return from_dict(apply_overrides(data, list(overrides)), path.parent)


def _numbers(obj, kind: type, *names: str) -> None:
    """Coerce numeric fields: YAML 1.1 reads ``1e-4`` (no dot) as a string."""
    for name in names:
        value = getattr(obj, name)
        try:
            setattr(obj, name, kind(value))
        except (TypeError, ValueError):
            raise ValueError(f"{name} must be a number, got {value!r}") from None


def _resolve(base: Path, value) -> Path:
    path = Path(str(value)).expanduser()
    return path if path.is_absolute() else (base / path).resolve()


def _check_keys(data: dict, cls, prefix: str) -> None:
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ValueError(f"unknown training key(s) {[prefix + k for k in unknown]}; known: "
                         f"{sorted(prefix + k for k in known)}")
