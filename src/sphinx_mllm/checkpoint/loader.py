"""Build-on-meta -> resolve names -> check shapes -> assign: the one load path for every format.

A *checkpoint source* is anything with ``names`` (canonical tensor names), ``shapes()``,
``dtype(name)``, ``config()``, ``tokenizer_path``, ``read(name, device, dtype)`` (a tensor for the
model), ``take(name)`` (a copy for a streaming writer) and ``report()`` (warnings about what
reading noticed): our directories
(:class:`~.ours.OursCheckpoint`) and released ones (:class:`~.official.ReleasedCheckpoint`).
"""

from __future__ import annotations

from typing import Iterator

import torch

from ..config import SphinxConfig
from ..model import SphinxModel, build
from . import keymap


def plan_model(source, cfg: SphinxConfig | None = None) -> tuple[SphinxModel, keymap.Plan]:
    """The model built on ``meta`` and the checked canonical -> ours plan (nothing read yet)."""
    model = build(cfg or source.config(), device="meta")
    expected = model.state_dict()
    plan = keymap.resolve(source.names, expected)
    keymap.check_shapes(plan, source.shapes(), expected)
    return model, plan


def tensors(source, plan: keymap.Plan, device: torch.device | str = "cpu",
            dtype: torch.dtype | None = None) -> Iterator[tuple[str, torch.Tensor]]:
    """(our name, full tensor) pairs, one canonical tensor read at a time; fused tensors split.

    ``dtype`` casts floating tensors only.
    """
    for name, targets in plan.plan.items():
        tensor = source.read(name, device, dtype)
        parts = keymap.split(tensor, len(targets)) if len(targets) > 1 else (tensor,)
        yield from zip(targets, parts)


def check_tokenizer(path, cfg: SphinxConfig) -> None:
    """The tokenizer must not have more pieces than the model has embedding rows."""
    from ..tokenizer import Tokenizer

    pieces = Tokenizer.from_file(path).vocab_size
    if pieces > cfg.llm.vocab_size:
        raise ValueError(f"tokenizer has {pieces} pieces, embeddings only {cfg.llm.vocab_size}")


def load_source(source, device: str | torch.device | None = None,
                dtype: torch.dtype | None = None) -> SphinxModel:
    """The model of an opened checkpoint (its config, its tokenizer checked against it)."""
    cfg = source.config()
    check_tokenizer(source.tokenizer_path, cfg)
    model = load_model(source, device, dtype, cfg)
    source.report()
    return model


def load_model(source, device: str | torch.device | None = None, dtype: torch.dtype | None = None,
               cfg: SphinxConfig | None = None) -> SphinxModel:
    """The whole model from ``source`` on ``device``; floating weights cast to ``dtype``."""
    model, plan = plan_model(source, cfg)
    device = torch.device(device or "cpu")
    state = dict(tensors(source, plan, device, dtype))
    model.load_state_dict(state, strict=True, assign=True)
    model.reset_buffers()
    return model.eval()
