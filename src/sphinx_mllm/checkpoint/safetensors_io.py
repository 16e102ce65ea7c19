"""Streaming safetensors shards: write tensor by tensor, read with header checks first.

A shard is written from (name, shape, dtype) declarations and a function producing each tensor
on demand, so that converting a checkpoint never holds more than one tensor in memory.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

import torch
from safetensors import safe_open

DTYPES = {torch.float32: "F32", torch.bfloat16: "BF16", torch.float16: "F16", torch.float64: "F64",
          torch.int64: "I64", torch.int32: "I32", torch.uint8: "U8", torch.bool: "BOOL"}
FROM_NAME = {v: k for k, v in DTYPES.items()}


@dataclass(frozen=True)
class TensorSpec:
    name: str
    shape: tuple[int, ...]
    dtype: torch.dtype

    @property
    def nbytes(self) -> int:
        n = 1
        for d in self.shape:
            n *= d
        return n * torch.empty((), dtype=self.dtype).element_size()


def write_shards(out_dir: Path, specs: Iterable[TensorSpec], produce: Callable[[str], torch.Tensor],
                 max_shard_bytes: int, metadata: dict[str, str] | None = None) -> dict[str, str]:
    """Write ``model-0000N-of-0000M.safetensors`` files; return the weight map (name -> file)."""
    groups: list[list[TensorSpec]] = [[]]
    size = 0
    for spec in specs:
        if groups[-1] and size + spec.nbytes > max_shard_bytes:
            groups.append([])
            size = 0
        groups[-1].append(spec)
        size += spec.nbytes
    weight_map = {}
    for i, group in enumerate(groups, start=1):
        fname = f"model-{i:05d}-of-{len(groups):05d}.safetensors"
        _write_one(out_dir / fname, group, produce, metadata or {})
        weight_map.update({spec.name: fname for spec in group})
    return weight_map


def _write_one(path: Path, specs: list[TensorSpec], produce, metadata: dict[str, str]) -> None:
    header: dict = {"__metadata__": metadata} if metadata else {}
    offset = 0
    for spec in specs:
        header[spec.name] = {"dtype": DTYPES[spec.dtype], "shape": list(spec.shape),
                             "data_offsets": [offset, offset + spec.nbytes]}
        offset += spec.nbytes
    blob = json.dumps(header, separators=(",", ":")).encode()
    blob += b" " * (-len(blob) % 8)  # keep tensor data 8-byte aligned
    tmp = path.with_suffix(".tmp")
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(blob)))
        f.write(blob)
        for spec in specs:
            tensor = produce(spec.name)
            if tuple(tensor.shape) != spec.shape or tensor.dtype != spec.dtype:
                raise ValueError(f"{spec.name}: produced {tuple(tensor.shape)} {tensor.dtype}, "
                                 f"declared {spec.shape} {spec.dtype}")
            f.write(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().data)
    tmp.replace(path)  # a crash never leaves a truncated shard under the final name


def read_specs(path: Path) -> dict[str, TensorSpec]:
    """Names, shapes and dtypes from a shard's header, without reading any tensor data."""
    with safe_open(str(path), framework="pt") as f:
        specs = {}
        for name in f.keys():
            sl = f.get_slice(name)
            dtype_name = sl.get_dtype()
            if dtype_name not in FROM_NAME:
                raise ValueError(f"{path.name}: {name} has unsupported dtype {dtype_name}")
            specs[name] = TensorSpec(name, tuple(sl.get_shape()), FROM_NAME[dtype_name])
        return specs
