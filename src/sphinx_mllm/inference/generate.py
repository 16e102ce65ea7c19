"""Token generation: pure sampling functions, prefill and one-token decode around a static KV cache.

Batched prompts are right-padded; every row keeps its own positions, so row ``b`` writes its
cache at ``len_b + step`` and attends to keys ``<= len_b + step``. Pad slots written during the
prefill are never attended (they sit after each row's last real position) and are overwritten by
that row's own decoding, so a batch decodes exactly as its rows would one by one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterator, Sequence

import torch

from ..model.sphinx import SphinxModel


@dataclass
class SamplingParams:
    """``temperature == 0`` is greedy; ``top_k == 0`` and ``top_p == 1`` disable those filters."""

    max_new_tokens: int = 256
    temperature: float = 0.0
    top_p: float = 1.0
    top_k: int = 0
    seed: int | None = None

    def __post_init__(self) -> None:
        if self.max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be >= 1, got {self.max_new_tokens}")
        if self.temperature < 0 or not 0 < self.top_p <= 1 or self.top_k < 0:
            raise ValueError("need temperature >= 0, 0 < top_p <= 1 and top_k >= 0")


# --- sampling (pure) ---------------------------------------------------------------------------


def top_k_filter(logits: torch.Tensor, k: int) -> torch.Tensor:
    """Keep the k largest logits per row (ties at the k-th value are kept), -inf elsewhere."""
    if k <= 0 or k >= logits.shape[-1]:
        return logits
    kth = torch.topk(logits, k, dim=-1).values[..., -1:]
    return logits.masked_fill(logits < kth, float("-inf"))


def top_p_filter(probs: torch.Tensor, p: float) -> torch.Tensor:
    """Meta-style nucleus: drop tokens whose *preceding* cumulative mass exceeds p; renormalise."""
    if p >= 1.0:
        return probs
    sorted_probs, order = torch.sort(probs, dim=-1, descending=True)
    preceding = sorted_probs.cumsum(-1) - sorted_probs
    sorted_probs = sorted_probs.masked_fill(preceding > p, 0.0)
    kept = torch.zeros_like(probs).scatter(-1, order, sorted_probs)
    return kept / kept.sum(-1, keepdim=True)


def sample(logits: torch.Tensor, params: SamplingParams,
           generator: torch.Generator | None = None) -> torch.Tensor:
    """(B, V) float logits -> (B,) next-token ids."""
    if params.temperature == 0:
        return logits.argmax(-1)
    probs = torch.softmax(top_k_filter(logits, params.top_k) / params.temperature, dim=-1)
    probs = top_p_filter(probs, params.top_p)
    return torch.multinomial(probs, 1, generator=generator).squeeze(-1)


# --- prefill / decode --------------------------------------------------------------------------


def prefill(model: SphinxModel, input_ids: torch.Tensor, images: torch.Tensor | None,
            lengths: torch.Tensor) -> torch.Tensor:
    """Fill the cache with right-padded prompts (B, T); return logits (B, V) at each row's end."""
    B, T = input_ids.shape
    input_pos = torch.arange(T, device=input_ids.device).expand(B, T)
    return model(input_ids, images, input_pos, logit_index=lengths - 1)[:, 0]


def decode_one_token(model: SphinxModel, tokens: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
    """tokens, pos: (B,) -> logits (B, V). Tokens are plain ids (never placeholders)."""
    if not model.llm.cache_len:
        raise RuntimeError("decode_one_token needs the KV cache set up by a prefill")
    h = model.llm.tok_embeddings(tokens[:, None])
    return model.forward_embeddings(h, pos[:, None])[:, 0]


@dataclass
class Step:
    """One decoding step: the new token of every row and which rows are finished after it."""

    tokens: list[int]
    finished: list[bool]


def generate_stream(model: SphinxModel, prompts: Sequence[Sequence[int]],
                    images: torch.Tensor | None, params: SamplingParams,
                    stop: Callable[[list[int]], bool], pad_id: int = 0) -> Iterator[Step]:
    """Yield one :class:`Step` per new token until every row is stopped or out of budget.

    ``stop(tokens_so_far)`` decides, per row, whether generation ended with the last token (EOS,
    a separator, ...). Raises ValueError when a prompt plus ``max_new_tokens`` exceeds the model's
    ``max_seq_len``.
    """
    device = model.llm.output.weight.device
    lengths = [len(p) for p in prompts]
    need = max(lengths) + params.max_new_tokens
    limit = model.cfg.llm.max_seq_len
    if need > limit:
        raise ValueError(
            f"prompt of {max(lengths)} tokens (visual tokens included) + max_new_tokens "
            f"{params.max_new_tokens} = {need} exceeds max_seq_len {limit}; shorten the prompt or "
            f"history, or lower max_new_tokens")
    ids = torch.full((len(prompts), max(lengths)), pad_id, dtype=torch.long)
    for row, prompt in enumerate(prompts):
        ids[row, :len(prompt)] = torch.tensor(prompt, dtype=torch.long)
    generator = None
    if params.seed is not None:
        generator = torch.Generator(device=device).manual_seed(params.seed)
    pos = torch.tensor(lengths, device=device)
    model.llm.setup_caches(len(prompts), need)
    try:
        # inference mode per call, never across a yield (it would leak into the caller)
        with torch.inference_mode():
            logits = prefill(model, ids.to(device), images, pos)
        outputs: list[list[int]] = [[] for _ in prompts]
        done = [False] * len(prompts)
        for step in range(params.max_new_tokens):
            with torch.inference_mode():
                token = sample(logits, params, generator)
            new = token.tolist()
            for row, t in enumerate(new):
                if not done[row]:
                    outputs[row].append(t)
                    done[row] = stop(outputs[row])
            yield Step(new, list(done))
            if all(done) or step == params.max_new_tokens - 1:
                break
            with torch.inference_mode():
                logits = decode_one_token(model, token, pos)
            pos = pos + 1
    finally:
        model.llm.clear_caches()


def generate(model: SphinxModel, prompts: Sequence[Sequence[int]], images: torch.Tensor | None,
             params: SamplingParams, stop: Callable[[list[int]], bool],
             pad_id: int = 0) -> list[list[int]]:
    """Generated ids per row, up to and including the token that stopped it."""
    outputs: list[list[int]] = [[] for _ in prompts]
    finished = [False] * len(prompts)
    for step in generate_stream(model, prompts, images, params, stop, pad_id):
        for row, t in enumerate(step.tokens):
            if not finished[row]:
                outputs[row].append(t)
        finished = step.finished
    return outputs
