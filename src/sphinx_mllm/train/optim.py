"""AdamW with decay only where it belongs, and the warm-up + cosine schedule (spec 9.2)."""

from __future__ import annotations

import math

import torch
from torch import nn

from .config import OptimConfig


def param_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """Trainable parameters in two groups: decayed (matrices, start/end vectors) and not (biases
    and norm weights: every parameter with fewer than two dimensions).

    The original decays by name (``.bias`` / ``norm.weight``), which also decays the projector's
    LayerNorm weight ``visual_proj.1.weight``; we keep every norm weight undecayed.
    """
    decay, no_decay = [], []
    for param in model.parameters():
        if param.requires_grad:
            (decay if param.ndim >= 2 else no_decay).append(param)
    return [{"params": decay, "weight_decay": weight_decay},
            {"params": no_decay, "weight_decay": 0.0}]


def lr_at(step: int, steps: int, cfg: OptimConfig) -> float:
    """Learning rate for optimiser step ``step`` (0-based) of ``steps``: ``lr * (step + 1) / W``
    for the ``W`` warm-up steps (the last of them at ``lr``), then a half-cosine that reaches
    ``min_lr`` at the last step."""
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    span = steps - cfg.warmup_steps
    progress = 1.0 if span <= 0 else min((step - cfg.warmup_steps + 1) / span, 1.0)
    return cfg.min_lr + (cfg.lr - cfg.min_lr) * 0.5 * (1.0 + math.cos(math.pi * progress))


def make_optimizer(model: nn.Module, cfg: OptimConfig) -> torch.optim.AdamW:
    groups = param_groups(model, cfg.weight_decay)
    if not any(g["params"] for g in groups):
        raise ValueError("no parameter requires grad: check `trainable`")
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=cfg.betas, foreach=True)


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr
