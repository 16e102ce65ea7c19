"""Model construction. ``build`` is the one place that decides device and dtype at build time."""

from __future__ import annotations

import contextlib

import torch

from ..config import SphinxConfig
from .sphinx import SphinxModel

__all__ = ["SphinxModel", "build", "resolve_config"]


def resolve_config(preset_or_config: str | SphinxConfig) -> SphinxConfig:
    if isinstance(preset_or_config, SphinxConfig):
        return preset_or_config
    return SphinxConfig.from_name(preset_or_config)


@contextlib.contextmanager
def _default_dtype(dtype: torch.dtype):
    """Scoped default dtype so that modules are created directly in ``dtype`` (restored after)."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        yield
    finally:
        torch.set_default_dtype(previous)


def build(preset_or_config: str | SphinxConfig, device: str | torch.device | None = None,
          dtype: torch.dtype | None = None) -> SphinxModel:
    """A SPHINX model with random weights, in eval mode.

    ``device="meta"`` builds without allocating weights (for inspection or before loading).
    ``dtype`` defaults to float32; weights are created directly on ``device`` in ``dtype``.
    """
    cfg = resolve_config(preset_or_config)
    device = torch.device(device or "cpu")
    with torch.device(device), _default_dtype(dtype or torch.float32):
        model = SphinxModel(cfg)
    if device.type != "meta":
        model.reset_buffers()
    return model.eval()
