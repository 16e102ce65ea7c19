"""Our checkpoint directory: ``config.json`` (SphinxConfig), ``tokenizer.model`` and
``model-0000N-of-0000M.safetensors`` shards with ``model.safetensors.index.json``.

Loading builds the model on ``meta`` and assigns tensors read through safetensors' memory map,
so no second full copy of the weights is made in RAM.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from ..config import SphinxConfig
from ..model import SphinxModel, build

INDEX = "model.safetensors.index.json"
CONFIG = "config.json"
TOKENIZER = "tokenizer.model"


def is_checkpoint_dir(path: str | Path) -> bool:
    path = Path(path)
    return (path / CONFIG).is_file() and (path / INDEX).is_file()


def save(model: SphinxModel, tokenizer_path: str | Path, out_dir: str | Path,
         max_shard_bytes: int = 5 * 1024**3) -> Path:
    """Write ``model`` (its current dtype) and the tokenizer to ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    shards: list[dict[str, torch.Tensor]] = [{}]
    size = 0
    for name, tensor in model.state_dict().items():
        nbytes = tensor.numel() * tensor.element_size()
        if shards[-1] and size + nbytes > max_shard_bytes:
            shards.append({})
            size = 0
        shards[-1][name] = tensor.detach().contiguous()
        size += nbytes
    weight_map = {}
    for i, shard in enumerate(shards, start=1):
        fname = f"model-{i:05d}-of-{len(shards):05d}.safetensors"
        save_file(shard, str(out / fname))
        weight_map.update({name: fname for name in shard})
    (out / INDEX).write_text(json.dumps({"weight_map": weight_map}, indent=1) + "\n")
    model.cfg.to_file(out / CONFIG)
    shutil.copyfile(tokenizer_path, out / TOKENIZER)
    return out


def load(path: str | Path, device: str | torch.device | None = None,
         dtype: torch.dtype | None = None) -> SphinxModel:
    """Model from our directory format; weights cast to ``dtype`` (default: as stored)."""
    path = Path(path)
    model = build(SphinxConfig.from_file(path / CONFIG), device="meta")
    weight_map = json.loads((path / INDEX).read_text())["weight_map"]
    expected = set(model.state_dict())
    missing, unexpected = expected - set(weight_map), set(weight_map) - expected
    if missing or unexpected:
        raise KeyError(f"checkpoint {path} does not match its config: missing {sorted(missing)[:5]}, "
                       f"unexpected {sorted(unexpected)[:5]}")
    state = {}
    device = torch.device(device or "cpu")
    for fname in sorted(set(weight_map.values())):
        with safe_open(str(path / fname), framework="pt", device=str(device)) as f:
            for name in f.keys():
                tensor = f.get_tensor(name)
                state[name] = tensor.to(dtype) if dtype is not None else tensor
    model.load_state_dict(state, strict=True, assign=True)
    model.reset_buffers()
    return model.eval()
