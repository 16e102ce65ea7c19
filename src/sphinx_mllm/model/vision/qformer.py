"""BLIP-2 EVA ViT-g + Q-Former: the 32 query outputs (``get_qformer_features`` semantics)."""

import torch
from torch import nn
from transformers import Blip2QFormerConfig, Blip2QFormerModel, Blip2VisionConfig, Blip2VisionModel

from ...config import QFormerConfig


def hf_configs(cfg: QFormerConfig) -> tuple[Blip2VisionConfig, Blip2QFormerConfig]:
    vision = Blip2VisionConfig(
        hidden_size=cfg.vision_width, intermediate_size=cfg.vision_mlp_dim,
        num_hidden_layers=cfg.vision_layers, num_attention_heads=cfg.vision_heads,
        image_size=cfg.view_size, patch_size=cfg.patch_size, attention_dropout=0.0)
    qformer = Blip2QFormerConfig(
        hidden_size=cfg.width, num_hidden_layers=cfg.layers, num_attention_heads=cfg.heads,
        intermediate_size=cfg.mlp_dim, cross_attention_frequency=cfg.cross_attention_frequency,
        encoder_hidden_size=cfg.vision_width, hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0)
    return vision, qformer


class QFormerEncoder(nn.Module):
    def __init__(self, cfg: QFormerConfig):
        super().__init__()
        self.cfg = cfg
        vision_cfg, qformer_cfg = hf_configs(cfg)
        self.vision_model = Blip2VisionModel(vision_cfg)
        self.query_tokens = nn.Parameter(torch.zeros(1, cfg.num_query_tokens, cfg.width))
        self.qformer = Blip2QFormerModel(qformer_cfg)

    @property
    def width(self) -> int:
        return self.cfg.width

    def forward(self, views: torch.Tensor) -> torch.Tensor:
        """(B, 3, v, v) -> (B, num_query_tokens, width)."""
        image_embeds = self.vision_model(pixel_values=views).last_hidden_state
        queries = self.query_tokens.expand(views.shape[0], -1, -1)
        mask = torch.ones(image_embeds.shape[:-1], dtype=torch.long, device=views.device)
        return self.qformer(query_embeds=queries, encoder_hidden_states=image_embeds,
                            encoder_attention_mask=mask).last_hidden_state
