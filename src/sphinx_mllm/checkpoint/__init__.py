"""Checkpoint I/O behind one front door.

``open(path)`` recognises our directory format (``ours``: config.json + tokenizer.model +
safetensors) and the released SPHINX format (``official``: meta.json + consolidated shards) and
returns a lazy source with ``config()``, ``tokenizer_path``, ``names``, ``shapes()`` and
``read(name, device, dtype)``; ``load(path)`` builds the model from it (see :mod:`.loader`).
"""

from __future__ import annotations

from pathlib import Path

import torch

from .loader import load_source
from .official import ReleasedCheckpoint, is_released_dir
from .ours import OursCheckpoint, is_checkpoint_dir

Checkpoint = OursCheckpoint | ReleasedCheckpoint


def is_checkpoint(path: str | Path) -> bool:
    path = Path(path)
    return is_checkpoint_dir(path) or (path.is_dir() and is_released_dir(path))


def open(path: str | Path, preset: str | None = None, max_seq_len: int = 4096) -> Checkpoint:
    """A checkpoint directory of either format, opened lazily (no tensor read yet).

    ``preset`` and ``max_seq_len`` apply to released checkpoints, whose files do not name the
    variant's geometry beyond ``meta.json``'s ``llama_type``.
    """
    path = Path(path)
    if is_checkpoint_dir(path):
        return OursCheckpoint(path)
    if path.is_dir() and is_released_dir(path):
        return ReleasedCheckpoint(path, preset, max_seq_len)
    raise FileNotFoundError(
        f"{str(path)!r} is not a checkpoint directory (ours: config.json + "
        "model.safetensors.index.json; released: meta.json + consolidated.XX-of-YY.model.pth)")


def load(path: str | Path, device: str | torch.device | None = None,
         dtype: torch.dtype | None = None, preset: str | None = None):
    """The model of a checkpoint directory of either format (see :func:`open`)."""
    return load_source(open(path, preset), device=device, dtype=dtype)


__all__ = ["Checkpoint", "OursCheckpoint", "ReleasedCheckpoint", "is_checkpoint", "load",
           "load_source", "open"]
