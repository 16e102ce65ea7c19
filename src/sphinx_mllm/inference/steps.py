"""Prefill and one-token decode on a KV cache the caller owns: small functions, no state.

The engine calls these; so can a script that wants each step's logits (``scripts/parity_check.py``).
Shaped like gpt-fast's ``generate.py`` (``setup_caches`` / ``prefill`` / ``decode_one_token``),
except that the cache is an argument instead of a buffer inside the model.
"""

from __future__ import annotations

import torch

from ..model.llm import KVCache, LayerKV
from ..model.sphinx import SphinxModel


def new_cache(model: SphinxModel, rows: int, max_seq_len: int) -> KVCache:
    """A zeroed static cache for ``rows`` sequences of up to ``max_seq_len`` tokens, in the model's
    dtype on its device. Raises ValueError beyond the RoPE table."""
    cfg = model.cfg.llm
    limit = model.llm.rope_positions(cfg)
    if max_seq_len > limit:
        raise ValueError(f"max_seq_len {max_seq_len} exceeds the RoPE table ({limit} positions)")
    return KVCache(cfg, rows, max_seq_len, model.dtype, model.device)


def prefill(model: SphinxModel, cache: list[LayerKV], input_ids: torch.Tensor,
            images: torch.Tensor | None, lengths: torch.Tensor, start: int = 0) -> torch.Tensor:
    """Write right-padded prompts (B, T) at positions ``start ..`` into ``cache`` (B rows).

    lengths: (B,) prompt lengths counted from position 0. Returns logits (B, V) at each row's last
    prompt token. Pad slots written here sit after each row's last real position, so they are
    never attended and that row's own decoding overwrites them.
    """
    B, T = input_ids.shape
    input_pos = start + torch.arange(T, device=input_ids.device).expand(B, T)
    return model(input_ids, images, input_pos, logit_index=lengths - 1 - start, cache=cache)[:, 0]


def decode_one_token(model: SphinxModel, cache: list[LayerKV], tokens: torch.Tensor,
                     pos: torch.Tensor) -> torch.Tensor:
    """tokens, pos: (B,) -> logits (B, V). Tokens are plain ids (never placeholders)."""
    h = model.llm.tok_embeddings(tokens[:, None])
    return model.forward_embeddings(h, pos[:, None], cache=cache)[:, 0]
