"""DINOv2 ViT-g/14 tokens: normed CLS + normed patches, on ImageNet-normalised input."""

import torch
from torch import nn
from transformers import Dinov2Config as HFDinov2Config
from transformers import Dinov2Model

from ...config import Dinov2Config
from ...constants import CLIP_MEAN, CLIP_STD, IMAGENET_MEAN, IMAGENET_STD


def hf_config(cfg: Dinov2Config) -> HFDinov2Config:
    return HFDinov2Config(
        hidden_size=cfg.width, num_hidden_layers=cfg.layers, num_attention_heads=cfg.heads,
        mlp_ratio=cfg.mlp_ratio, use_swiglu_ffn=cfg.use_swiglu, patch_size=cfg.patch_size,
        image_size=cfg.image_size, layerscale_value=cfg.layerscale_value,
        layer_norm_eps=cfg.norm_eps, drop_path_rate=0.0)


def clip_to_imagenet(x: torch.Tensor) -> torch.Tensor:
    """Re-normalise a CLIP-normalised image to ImageNet mean/std (channel dim 1)."""
    def stat(values):
        return torch.tensor(values, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    return (x * stat(CLIP_STD) + stat(CLIP_MEAN) - stat(IMAGENET_MEAN)) / stat(IMAGENET_STD)


class Dinov2Encoder(nn.Module):
    def __init__(self, cfg: Dinov2Config):
        super().__init__()
        self.cfg = cfg
        self.model = Dinov2Model(hf_config(cfg))

    @property
    def width(self) -> int:
        return self.cfg.width

    def forward(self, views: torch.Tensor) -> torch.Tensor:
        """(B, 3, v, v) -> (B, 1 + (v/14)^2, width); position embeddings interpolated to v/14."""
        return self.model(pixel_values=clip_to_imagenet(views)).last_hidden_state
