"""LoRA (Hu et al. 2021) on the LLM's linear layers, and merging it back into plain weights.

``LoRALinear`` *is* an ``nn.Linear`` (same ``weight`` name, so checkpoints and FSDP see the base
weight where they expect it) with two extra parameters, ``lora_a`` (rank, in) and ``lora_b``
(out, rank); ``lora_b`` starts at zero so training starts from the base model exactly.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .config import LoraConfig

_OWNERS = {"wq": "attention", "wk": "attention", "wv": "attention", "wo": "attention",
           "w1": "feed_forward", "w2": "feed_forward", "w3": "feed_forward"}


class LoRALinear(nn.Linear):
    def __init__(self, in_features: int, out_features: int, rank: int, scale: float,
                 dropout: float = 0.0, device=None, dtype=None):
        super().__init__(in_features, out_features, bias=False, device=device, dtype=dtype)
        self.scale = scale
        self.lora_a = nn.Parameter(torch.empty(rank, in_features, device=device, dtype=dtype))
        self.lora_b = nn.Parameter(torch.zeros(out_features, rank, device=device, dtype=dtype))
        self.dropout = nn.Dropout(dropout)
        if not self.lora_a.is_meta:
            init_lora_a(self.lora_a)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        delta = F.linear(F.linear(self.dropout(x), self.lora_a), self.lora_b)
        return F.linear(x, self.weight) + self.scale * delta


def init_lora_a(tensor: torch.Tensor) -> torch.Tensor:
    """The ``nn.Linear`` default (Kaiming-uniform, a = sqrt(5)), as the LoRA paper's code does."""
    return nn.init.kaiming_uniform_(tensor, a=math.sqrt(5))


def add_lora(llm: nn.Module, cfg: LoraConfig) -> list[str]:
    """Replace the target linears of every block of ``llm`` in place; return their names.

    Base weights are moved over, not copied (works on ``meta`` too); new ``lora_a`` tensors are
    initialised from the global RNG unless the model is on ``meta``.
    """
    names = []
    for i, block in enumerate(llm.layers):
        for target in cfg.targets:
            owner = getattr(block, _OWNERS[target])
            old: nn.Linear = getattr(owner, target)
            new = LoRALinear(old.in_features, old.out_features, cfg.rank, cfg.scale, cfg.dropout,
                             device=old.weight.device, dtype=old.weight.dtype)
            new.weight = old.weight
            setattr(owner, target, new)
            names.append(f"layers.{i}.{_OWNERS[target]}.{target}")
    return names


def merge_state(state: dict[str, torch.Tensor], scale: float) -> dict[str, torch.Tensor]:
    """A state dict with LoRA folded in: ``weight + scale * lora_b @ lora_a``, adapters dropped.

    The sum is computed in float32 and cast back to the weight's dtype.
    """
    merged = {k: v for k, v in state.items() if not k.endswith((".lora_a", ".lora_b"))}
    for key in state:
        if key.endswith(".lora_a"):
            stem = key[: -len("lora_a")]
            weight = state[stem + "weight"]
            delta = state[stem + "lora_b"].float() @ state[key].float()
            merged[stem + "weight"] = (weight.float() + scale * delta).to(weight.dtype)
    return merged
