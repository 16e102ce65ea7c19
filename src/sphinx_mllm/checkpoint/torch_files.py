"""Weights-only loading of ``.pth`` / ``.bin`` files: the one door through which pickles enter."""

from __future__ import annotations

import ctypes
import mmap
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
    return load_mapped(path, mmap)[0]


def load_mapped(path: str | Path, mmap: bool = True) -> tuple[dict[str, torch.Tensor], bool]:
    """:func:`load_state_dict` plus whether the tensors really are mapped from the file."""
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
            return load_mapped(path, mmap=False)
        raise
    if isinstance(obj, dict) and isinstance(obj.get("model"), dict):
        obj = obj["model"]
    if not isinstance(obj, dict):
        raise ValueError(f"{path}: expected a state dict, found {type(obj).__name__}")
    tensors = {k: v for k, v in obj.items() if isinstance(v, torch.Tensor)}
    if len(tensors) != len(obj):
        others = sorted(k for k in obj if k not in tensors)
        raise ValueError(f"{path}: non-tensor entries in the state dict: {others[:5]}")
    return tensors, mmap


_MADV_DONTNEED = 4
try:
    _madvise = ctypes.CDLL(None, use_errno=True).madvise
except (OSError, AttributeError):  # not a POSIX libc: keep the pages
    _madvise = None


def drop_pages(tensor: torch.Tensor) -> None:
    """Advise the kernel to drop the resident pages of a memory-mapped, unmodified tensor.

    Only for tensors that :func:`load_mapped` reports as mapped from a file: clean private file
    pages are re-read from disk if touched again, so this frees memory without changing any
    value. (On anonymous memory it would zero the pages.)
    """
    if _madvise is None or tensor.device.type != "cpu" or tensor.numel() == 0:
        return
    start = tensor.data_ptr() // mmap.PAGESIZE * mmap.PAGESIZE
    end = tensor.data_ptr() + tensor.numel() * tensor.element_size()
    _madvise(ctypes.c_void_p(start), ctypes.c_size_t(end - start), _MADV_DONTNEED)
