"""Weights-only loading of ``.pth`` / ``.bin`` files: the one door through which pickles enter."""

from __future__ import annotations

import pickle
from pathlib import Path

import torch


class UnsafeCheckpointError(RuntimeError):
    """A checkpoint file holds more than tensors and containers (it could run code)."""


def load_state_dict(path: str | Path, mmap: bool = True) -> dict[str, torch.Tensor]:
    """Tensors of a torch pickle, memory-mapped when possible; ``{"model": sd}`` is unwrapped.

    Loading goes through ``torch.load(weights_only=True)``: a file whose unpickling would build
    arbitrary objects (and so could run code) raises :class:`UnsafeCheckpointError`.
    """
    path = Path(path)
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
    except pickle.UnpicklingError as err:
        raise UnsafeCheckpointError(
            f"refusing to load {path}: it contains objects other than tensors, and loading them "
            f"could run code. Only plain tensor checkpoints are accepted. ({str(err).splitlines()[0]})"
        ) from None
    except RuntimeError as err:
        if mmap and "mmap" in str(err):  # legacy (non-zip) serialization cannot be mapped
            return load_state_dict(path, mmap=False)
        raise
    if isinstance(obj, dict) and isinstance(obj.get("model"), dict):
        obj = obj["model"]
    if not isinstance(obj, dict):
        raise ValueError(f"{path}: expected a state dict, found {type(obj).__name__}")
    tensors = {k: v for k, v in obj.items() if isinstance(v, torch.Tensor)}
    if len(tensors) != len(obj):
        others = sorted(k for k in obj if k not in tensors)
        raise ValueError(f"{path}: non-tensor entries in the state dict: {others[:5]}")
    return tensors
