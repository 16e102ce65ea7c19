"""The released SPHINX checkpoint format (LLaMA2-Accessory ``consolidated`` shards).

```
DIR/
  consolidated.00-of-02.model.pth   model-parallel rank 0 ({"model": sd} or sd; keys "llma.*")
  consolidated.01-of-02.model.pth
  config.json                       dataclasses.asdict(ModelArgs)
  meta.json                         {"llama_type": "llama_ens5"}
  tokenizer.model
```

Shards are memory-mapped; model-parallel tensors are concatenated along their split dimension
(spec 5.6) one tensor at a time; replicated tensors (norms, projections, all encoders) come from
shard 0, with a warning if another shard's copy differs.
"""

from __future__ import annotations

import dataclasses
import json
import re
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path

import torch

from ..config import LLMConfig, SphinxConfig
from ..model import SphinxModel
from . import ours
from .loader import check_tokenizer, load_source, plan_model
from .safetensors_io import TensorSpec
from .torch_files import drop_pages, load_mapped

LLAMA_TYPES = {
    "llama_ens": "sphinx",
    "llama_ens5": "sphinx-1k",
    "llama_ens10": "sphinx-2k",
    "llama_ens_light": "sphinx-tiny",
    "llama_ens5_light": "sphinx-tiny-1k",
}
PREFIX = "llma."
SHARD_RE = re.compile(r"consolidated\.(\d+)-of-(\d+)\.model\.pth")
# Model-parallel split dims (spec 5.6); anything else is replicated.
_SPLIT = ((re.compile(r"tok_embeddings\.weight"), 1),
          (re.compile(r"(layers\.\d+\.(attention\.w[qkv]|feed_forward\.w[13])|output)\.weight"), 0),
          (re.compile(r"layers\.\d+\.(attention\.wo|feed_forward\.w2)\.weight"), 1))


def meta_llm_config(args: dict, vocab_size: int, max_seq_len: int = 4096) -> LLMConfig:
    """LLM dimensions from Meta's ``ModelArgs`` / ``params.json`` keys (absent keys: defaults)."""
    return LLMConfig(dim=args["dim"], n_layers=args["n_layers"], n_heads=args["n_heads"],
                     n_kv_heads=args.get("n_kv_heads"), vocab_size=vocab_size,
                     multiple_of=args.get("multiple_of", 256),
                     ffn_dim_multiplier=args.get("ffn_dim_multiplier"),
                     hidden_dim=args.get("hidden_dim"), norm_eps=args.get("norm_eps", 1e-5),
                     rope_theta=args.get("rope_theta", 10000.0), max_seq_len=max_seq_len)


def split_dim(canonical: str) -> int | None:
    """The model-parallel dimension of a canonical tensor, or None when replicated."""
    for pattern, dim in _SPLIT:
        if pattern.fullmatch(canonical):
            return dim
    return None


def merged_shape(name: str, shards: Sequence[Mapping[str, torch.Tensor]]) -> tuple[int, ...]:
    """The full-model shape of tensor ``name`` over model-parallel ``shards`` (one name -> tensor
    mapping per shard): its split dimension summed, the others as in the first shard."""
    shape = list(shards[0][name].shape)
    dim = split_dim(name)
    if dim is not None:
        shape[dim] = sum(s[name].shape[dim] for s in shards)
    return tuple(shape)


def is_released_dir(path: str | Path) -> bool:
    path = Path(path)
    return (path / "meta.json").is_file() and any(SHARD_RE.fullmatch(p.name) for p in path.iterdir())


class ReleasedCheckpoint:
    """A released checkpoint directory opened lazily (shards memory-mapped, nothing merged yet)."""

    def __init__(self, path: str | Path, preset: str | None = None, max_seq_len: int = 4096):
        self.path = Path(path)
        self.preset, self.max_seq_len = preset, max_seq_len
        self.meta = json.loads((self.path / "meta.json").read_text())
        self.model_args = json.loads((self.path / "config.json").read_text())
        loaded = [load_mapped(f) for f in _shard_files(self.path)]
        self.shards = [_strip_prefix(tensors) for tensors, _ in loaded]
        self.mapped = all(mapped for _, mapped in loaded)
        self.names = list(self.shards[0])
        for i, shard in enumerate(self.shards[1:], start=1):
            if set(shard) != set(self.names):
                diff = sorted(set(shard) ^ set(self.names))[:5]
                raise KeyError(f"shard {i} of {self.path} has other keys than shard 0: {diff}")
        self._replica_mismatch: list[str] = []

    @property
    def tokenizer_path(self) -> Path:
        return self.path / "tokenizer.model"

    def config(self, preset: str | None = None, max_seq_len: int | None = None,
               vocab_size: int | None = None) -> SphinxConfig:
        """Encoder geometry from ``meta.json`` (or ``preset``), LLM dims from ``config.json``;
        the vocabulary from the embedding rows (``config.json`` often says -1) unless given."""
        preset = preset or self.preset
        max_seq_len = max_seq_len or self.max_seq_len
        llama_type = self.meta.get("llama_type")
        if preset is None:
            if llama_type not in LLAMA_TYPES:
                raise ValueError(f"{self.path}: llama_type {llama_type!r} is not supported; "
                                 f"supported: {', '.join(f'{k} ({v})' for k, v in LLAMA_TYPES.items())}")
            preset = LLAMA_TYPES[llama_type]
        vocab = vocab_size or self.shapes()["tok_embeddings.weight"][0]
        llm = meta_llm_config(self.model_args, vocab, max_seq_len)
        return dataclasses.replace(SphinxConfig.from_name(preset), llm=llm)

    def shapes(self) -> dict[str, tuple[int, ...]]:
        """Merged (full-model) shape of every tensor, from shard metadata only."""
        return {name: merged_shape(name, self.shards) for name in self.names}

    def dtype(self, name: str) -> torch.dtype:
        return self.shards[0][name].dtype

    def get(self, name: str) -> torch.Tensor:
        """The merged tensor (a fresh tensor for split ones, a mapped view for replicated ones)."""
        dim = split_dim(name)
        if dim is not None:
            return torch.cat([s[name] for s in self.shards], dim=dim)
        first = self.shards[0][name]
        if any(not torch.equal(first, s[name]) for s in self.shards[1:]):
            self._replica_mismatch.append(name)
        return first

    def read(self, name: str, device: torch.device | str = "cpu",
             dtype: torch.dtype | None = None) -> torch.Tensor:
        """The merged tensor on ``device`` (floating ones cast to ``dtype``); when that made a
        copy, the mapped pages behind it are dropped."""
        source = self.get(name)
        cast = dtype if dtype is not None and source.is_floating_point() else source.dtype
        tensor = source.to(device=device, dtype=cast)
        if tensor.device.type != "cpu" or tensor.data_ptr() != self.shards[0][name].data_ptr():
            self.release(name)
        return tensor

    def take(self, name: str) -> torch.Tensor:
        """The merged tensor as a copy of its own, its mapped pages dropped (streaming writers:
        the page cache is not charged to this process, so RSS stays near one tensor)."""
        tensor = self.get(name).clone()
        self.release(name)
        return tensor

    def release(self, name: str) -> None:
        """Drop the mapped pages behind ``name`` in every shard (they are re-read if needed)."""
        if not self.mapped:
            return
        for shard in self.shards:
            drop_pages(shard[name])

    def report(self) -> None:
        """Warn about what reading noticed (replicated tensors that differ between shards)."""
        self.warn_replicas()

    def warn_replicas(self) -> None:
        if self._replica_mismatch:
            warnings.warn(f"{self.path}: replicated tensors differ between shards; shard 0 was "
                          f"used for {len(self._replica_mismatch)}: {self._replica_mismatch[:5]}")


def _shard_files(path: Path) -> list[Path]:
    found = sorted((int(m.group(1)), int(m.group(2)), p) for p in path.iterdir()
                   if (m := SHARD_RE.fullmatch(p.name)))
    if not found:
        raise FileNotFoundError(f"no consolidated.XX-of-YY.model.pth shards in {path}")
    total = found[0][1]
    if [r for r, _, _ in found] != list(range(total)) or any(t != total for _, t, _ in found):
        raise FileNotFoundError(f"{path}: incomplete shard set {[p.name for _, _, p in found]}")
    return [p for _, _, p in found]


def _strip_prefix(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k.removeprefix(PREFIX): v for k, v in state.items()}


def load(path: str | Path, device: str | torch.device | None = None,
         dtype: torch.dtype | None = None, preset: str | None = None,
         max_seq_len: int = 4096) -> SphinxModel:
    """Model from a released checkpoint directory; ``preset`` overrides ``meta.json``'s variant."""
    return load_source(ReleasedCheckpoint(path, preset, max_seq_len), device=device, dtype=dtype)


def convert(src: str | Path, dst: str | Path, preset: str | None = None,
            max_seq_len: int = 4096, max_shard_bytes: int = ours.MAX_SHARD_BYTES) -> Path:
    """Released format -> ours, streaming: one merged tensor in memory at a time."""
    ckpt = ReleasedCheckpoint(src, preset, max_seq_len)
    cfg = ckpt.config()
    check_tokenizer(ckpt.tokenizer_path, cfg)
    _, plan = plan_model(ckpt, cfg)
    shapes = ckpt.shapes()
    specs = [TensorSpec(n, shapes[n], ckpt.dtype(n)) for n in plan.plan]
    out = ours.write(dst, cfg, ckpt.tokenizer_path, specs, ckpt.take, max_shard_bytes)
    ckpt.report()
    return out
