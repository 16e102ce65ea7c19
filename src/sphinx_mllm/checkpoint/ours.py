"""Our checkpoint directory.

```
DIR/
  config.json                           SphinxConfig
  tokenizer.model                       SentencePiece
  model-0000N-of-0000M.safetensors      <= 5 GB each, canonical (released, un-prefixed) names
  model.safetensors.index.json          {"metadata": {...}, "weight_map": {name: file}}
```

Loading builds the model on ``meta``, checks every shard header (dtype, shape) against the
config before touching tensor data, then assigns tensors read through safetensors' memory map.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import torch
from safetensors import safe_open

from ..config import SphinxConfig
from ..model import SphinxModel
from . import keymap
from .safetensors_io import TensorSpec, read_specs, write_shards

INDEX = "model.safetensors.index.json"
CONFIG = "config.json"
TOKENIZER = "tokenizer.model"
FORMAT = "sphinx-mllm"
MAX_SHARD_BYTES = 5 * 10**9


def is_checkpoint_dir(path: str | Path) -> bool:
    path = Path(path)
    return (path / CONFIG).is_file() and (path / INDEX).is_file()


def write(out_dir: str | Path, config: SphinxConfig, tokenizer_path: str | Path,
          specs: list[TensorSpec], produce, max_shard_bytes: int = MAX_SHARD_BYTES,
          metadata: dict | None = None) -> Path:
    """Write a checkpoint from canonical tensor declarations and a producer (streaming);
    ``metadata`` (JSON values) joins the index's ``metadata``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    dtypes = sorted({str(s.dtype).removeprefix("torch.") for s in specs})
    weight_map = write_shards(out, specs, produce, max_shard_bytes, {"format": FORMAT})
    index = {"metadata": {"format": FORMAT, "dtypes": dtypes,
                          "total_size": sum(s.nbytes for s in specs), **(metadata or {})},
             "weight_map": weight_map}
    (out / INDEX).write_text(json.dumps(index, indent=1) + "\n")
    config.to_file(out / CONFIG)
    if Path(tokenizer_path).resolve() != (out / TOKENIZER).resolve():
        shutil.copyfile(tokenizer_path, out / TOKENIZER)
    return out


def save(model: SphinxModel, tokenizer_path: str | Path, out_dir: str | Path,
         max_shard_bytes: int = MAX_SHARD_BYTES) -> Path:
    """Write ``model`` (in its current dtype) and the tokenizer to ``out_dir``."""
    canonical = keymap.to_canonical(model.state_dict())
    specs = [TensorSpec(name, tuple(t.shape), t.dtype) for name, t in canonical.items()]
    return write(out_dir, model.cfg, tokenizer_path, specs, canonical.__getitem__, max_shard_bytes)


class OursCheckpoint:
    """Our checkpoint directory opened lazily: headers read and checked, tensors on demand."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        index = json.loads((self.path / INDEX).read_text())
        self.weight_map: dict[str, str] = index["weight_map"]
        self.metadata: dict = index.get("metadata", {})
        self.files = sorted(set(self.weight_map.values()))
        self.specs: dict[str, TensorSpec] = {}
        for fname in self.files:
            self.specs.update(read_specs(self.path / fname))
        if set(self.specs) != set(self.weight_map):
            raise KeyError(f"{self.path / INDEX} does not list the shards' tensors: "
                           f"{sorted(set(self.specs) ^ set(self.weight_map))[:10]}")
        self.names = list(self.weight_map)
        self._handles: dict = {}

    @property
    def tokenizer_path(self) -> Path:
        return self.path / TOKENIZER

    def config(self) -> SphinxConfig:
        return SphinxConfig.from_file(self.path / CONFIG)

    def shapes(self) -> dict[str, tuple[int, ...]]:
        return {name: spec.shape for name, spec in self.specs.items()}

    def dtype(self, name: str) -> torch.dtype:
        return self.specs[name].dtype

    def get(self, name: str) -> torch.Tensor:
        """One canonical tensor, read through safetensors' memory map."""
        fname = self.weight_map[name]
        if fname not in self._handles:
            self._handles[fname] = safe_open(str(self.path / fname), framework="pt")
        return self._handles[fname].get_tensor(name)

    def report(self) -> None:
        """Nothing to warn about: every tensor was checked against the index."""

    def take(self, name: str) -> torch.Tensor:
        """A tensor of its own (safetensors reads copy already)."""
        return self.get(name)

    def read(self, name: str, device: torch.device | str = "cpu",
             dtype: torch.dtype | None = None) -> torch.Tensor:
        """``get`` moved to ``device``; floating tensors cast to ``dtype`` (None: as stored)."""
        tensor = self.get(name)
        cast = dtype if dtype is not None and tensor.is_floating_point() else tensor.dtype
        return tensor.to(device=device, dtype=cast)


def load(path: str | Path, device: str | torch.device | None = None,
         dtype: torch.dtype | None = None) -> SphinxModel:
    """Model from our directory format; floating weights cast to ``dtype`` (default: as stored)."""
    from .loader import load_source

    return load_source(OursCheckpoint(path), device=device, dtype=dtype)
