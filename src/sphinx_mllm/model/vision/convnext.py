"""OpenCLIP ConvNeXt-XXL trunk tokens: [GAP, map after the head LayerNorm], upsampled to the grid."""

import torch
import torch.nn.functional as F
from torch import nn
from transformers import ConvNextConfig as HFConvNextConfig
from transformers import ConvNextModel

from ...config import ConvNextConfig


def hf_config(cfg: ConvNextConfig) -> HFConvNextConfig:
    return HFConvNextConfig(
        num_stages=len(cfg.dims), hidden_sizes=list(cfg.dims), depths=list(cfg.depths),
        layer_norm_eps=cfg.norm_eps, drop_path_rate=0.0, image_size=cfg.input_size,
        layer_scale_init_value=cfg.layer_scale_init)


class ConvNextEncoder(nn.Module):
    def __init__(self, cfg: ConvNextConfig):
        super().__init__()
        self.cfg = cfg
        self.model = ConvNextModel(hf_config(cfg))
        # transformers hard-codes eps=1e-6 in the inner LayerNorms; timm's convnext_xxlarge uses
        # 1e-5 throughout, so set it on the modules we own.
        for module in self.model.modules():
            if isinstance(module, nn.LayerNorm):
                module.eps = cfg.norm_eps

    @property
    def width(self) -> int:
        return self.cfg.width

    def prepare(self, views: torch.Tensor) -> torch.Tensor:
        """(B, 3, v, v) views -> (B, 3, input_size, input_size), the trunk's input.

        With ``resize_input`` the original resizes through fp16 with nearest mode, also when the
        size is unchanged (SPHINX-Tiny: only the fp16 rounding acts); SPHINX-Tiny-1k feeds its
        views as they are, so its tiles keep full precision.
        """
        if not self.cfg.resize_input:
            return views
        size = (self.cfg.input_size,) * 2
        return F.interpolate(views.half(), size=size, mode="nearest").to(views.dtype)

    def feature_map(self, x: torch.Tensor) -> torch.Tensor:
        """Trunk input (B, 3, s, s) -> (B, s/32, s/32, width), the last map after the head norm."""
        fmap = self.model(pixel_values=x).last_hidden_state  # (B, C, h, w)
        return self.model.layernorm(fmap.permute(0, 2, 3, 1))  # head LayerNorm2d per location

    def forward(self, views: torch.Tensor) -> torch.Tensor:
        """(B, 3, v, v) -> (B, 1 + token_grid^2, width)."""
        fmap = self.feature_map(self.prepare(views))
        up = self.cfg.upsample
        fmap = fmap.repeat_interleave(up, dim=1).repeat_interleave(up, dim=2)  # (B, g, g, C)
        tokens = fmap.flatten(1, 2)  # (B, g*g, C), raster order
        return torch.cat([tokens.mean(dim=1, keepdim=True), tokens], dim=1)
