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
from ..model import SphinxModel, build
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
          specs: list[TensorSpec], produce, max_shard_bytes: int = MAX_SHARD_BYTES) -> Path:
    """Write a checkpoint from canonical tensor declarations and a producer (streaming)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    dtypes = sorted({str(s.dtype).removeprefix("torch.") for s in specs})
    weight_map = write_shards(out, specs, produce, max_shard_bytes, {"format": FORMAT})
    index = {"metadata": {"format": FORMAT, "dtypes": dtypes,
                          "total_size": sum(s.nbytes for s in specs)},
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


def load(path: str | Path, device: str | torch.device | None = None,
         dtype: torch.dtype | None = None) -> SphinxModel:
    """Model from our directory format; floating weights cast to ``dtype`` (default: as stored)."""
    path = Path(path)
    model = build(SphinxConfig.from_file(path / CONFIG), device="meta")
    weight_map = json.loads((path / INDEX).read_text())["weight_map"]
    files = sorted(set(weight_map.values()))
    specs: dict[str, TensorSpec] = {}
    for fname in files:
        specs.update(read_specs(path / fname))
    if set(specs) != set(weight_map):
        raise KeyError(f"{path / INDEX} does not list the shards' tensors: "
                       f"{sorted(set(specs) ^ set(weight_map))[:10]}")
    expected = model.state_dict()
    plan = keymap.resolve(weight_map, expected)
    keymap.check_shapes(plan, {n: s.shape for n, s in specs.items()}, expected)
    device = torch.device(device or "cpu")
    handles = {f: safe_open(str(path / f), framework="pt", device=str(device)) for f in files}
    keymap.load_into(model, plan, lambda name: handles[weight_map[name]].get_tensor(name),
                     device, dtype)
    model.reset_buffers()
    return model.eval()
