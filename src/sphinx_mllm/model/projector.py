"""Encoder-to-LLM projections: ``Sequential(Linear(in, dim), LayerNorm(dim))`` as in SPHINX."""

from torch import nn


def projection(in_features: int, dim: int) -> nn.Sequential:
    # Index names 0 / 1 match the released checkpoints' ``visual_proj.0`` / ``visual_proj.1``.
    return nn.Sequential(nn.Linear(in_features, dim), nn.LayerNorm(dim, eps=1e-5))
