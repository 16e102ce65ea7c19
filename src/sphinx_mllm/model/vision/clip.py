"""OpenAI CLIP ViT-L/14 tokens as SPHINX takes them: every position after ``ln_post``, no ``proj``."""

import torch
from torch import nn
from transformers import CLIPVisionConfig, CLIPVisionModel

from ...config import ClipConfig
from .stem import ConvStem


def hf_config(cfg: ClipConfig) -> CLIPVisionConfig:
    return CLIPVisionConfig(
        hidden_size=cfg.width, intermediate_size=cfg.mlp_dim, num_hidden_layers=cfg.layers,
        num_attention_heads=cfg.heads, image_size=cfg.image_size, patch_size=cfg.patch_size,
        hidden_act=cfg.hidden_act, layer_norm_eps=cfg.norm_eps, attention_dropout=0.0)


class ClipEncoder(nn.Module):
    def __init__(self, cfg: ClipConfig):
        super().__init__()
        self.cfg = cfg
        self.model = CLIPVisionModel(hf_config(cfg))
        if cfg.stem == "conv":
            self.model.embeddings.patch_embedding = ConvStem(cfg.width, cfg.patch_size)

    @property
    def width(self) -> int:
        return self.cfg.width

    def reset_buffers(self) -> None:
        """Recreate transformers' non-persistent ``position_ids`` (lost when built on ``meta``)."""
        emb = self.model.embeddings
        if hasattr(emb, "position_ids"):
            device = emb.position_embedding.weight.device
            emb.position_ids = torch.arange(emb.num_positions, device=device).expand((1, -1))

    def forward(self, views: torch.Tensor) -> torch.Tensor:
        """(B, 3, v, v) -> (B, 1 + (v/14)^2, width): CLS then patches in raster order."""
        hidden = self.model(pixel_values=views).last_hidden_state  # before ln_post
        return self.model.post_layernorm(hidden)
