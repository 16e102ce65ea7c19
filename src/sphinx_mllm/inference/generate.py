"""Token generation in one call: ``generate`` hands the prompts to an :class:`Engine` and collects.

The pieces live in their own modules: sampling (pure functions) in ``sampling.py``, prefill and
one-token decode on a given cache in ``steps.py``, the cache, its slots and the batching in
``engine.py``. They are re-exported here for callers that import them from this module.
"""

from __future__ import annotations

from typing import Callable, Sequence

import torch

from ..constants import IMAGE_PLACEHOLDER_ID
from ..model.sphinx import SphinxModel
from .engine import Engine, check_fits
from .sampling import SamplingParams, sample, top_k_filter, top_p_filter
from .steps import decode_one_token, new_cache, prefill

__all__ = ["Engine", "SamplingParams", "decode_one_token", "generate", "new_cache", "prefill",
           "sample", "split_images", "top_k_filter", "top_p_filter"]


def split_images(prompts: Sequence[Sequence[int]], images: torch.Tensor | None,
                 image_tokens: int) -> list[torch.Tensor | None]:
    """Give each prompt its images: ``images`` (N, 3, S, S) follow the placeholders in row order."""
    out, used = [], 0
    for prompt in prompts:
        n = sum(t == IMAGE_PLACEHOLDER_ID for t in prompt) // image_tokens
        out.append(None if n == 0 or images is None else images[used:used + n])
        used += n
    if images is not None and used != images.shape[0]:
        raise ValueError(f"prompts hold placeholders for {used} image(s) but {images.shape[0]} "
                         f"were given")
    return out


def generate(model: SphinxModel | Engine, prompts: Sequence[Sequence[int]],
             images: torch.Tensor | None, params: SamplingParams,
             stop: Callable[[list[int]], bool]) -> list[list[int]]:
    """Generated ids per prompt, up to and including the token that stopped it.

    ``model`` is an :class:`Engine` (whose cache, slots and prefix cache are used) or a bare model,
    for which a one-off engine sized to these prompts is made (no prefix reuse). Raises ValueError
    when a prompt plus ``max_new_tokens`` exceeds the model's ``max_seq_len``.
    """
    one_off = isinstance(model, SphinxModel)
    if one_off:
        need = max(len(p) for p in prompts) + params.max_new_tokens
        check_fits(need - params.max_new_tokens, params.max_new_tokens, model.cfg.llm.max_seq_len)
        model = Engine(model, max_batch=len(prompts), max_seq_len=need, prefix_cache=0)
    try:
        per_prompt = split_images(prompts, images, model.model.cfg.image_tokens)
        seqs = model.submit_many(prompts, per_prompt, params, stop)
        try:
            return [seq.result() for seq in seqs]
        finally:
            for seq in seqs:
                seq.cancel()
    finally:
        if one_off:  # a GPU engine keeps its worker thread, and with it the cache, until closed
            model.close()
