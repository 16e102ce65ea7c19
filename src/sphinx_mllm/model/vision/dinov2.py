"""DINOv2 ViT-g/14 tokens: normed CLS + normed patches, on ImageNet-normalised input."""

import torch
import torch.nn.functional as F
from torch import nn
from transformers import Dinov2Config as HFDinov2Config
from transformers import Dinov2Model

from ...config import Dinov2Config
from ...constants import CLIP_MEAN, CLIP_STD, IMAGENET_MEAN, IMAGENET_STD
from .stem import ConvStem


def hf_config(cfg: Dinov2Config) -> HFDinov2Config:
    return HFDinov2Config(
        hidden_size=cfg.width, num_hidden_layers=cfg.layers, num_attention_heads=cfg.heads,
        mlp_ratio=cfg.mlp_ratio, use_swiglu_ffn=cfg.use_swiglu, patch_size=cfg.patch_size,
        image_size=cfg.image_size, layerscale_value=cfg.layerscale_value,
        layer_norm_eps=cfg.norm_eps, drop_path_rate=0.0)


def clip_to_imagenet(x: torch.Tensor, form: str = "sequential") -> torch.Tensor:
    """Re-normalise a CLIP-normalised image to ImageNet mean/std (channel dim 1), in x's dtype.

    Both forms are the original's: the four-encoder variants write
    ``(x * clip_std + clip_mean - in_mean) / in_std`` ("sequential"), the Tiny variants
    ``x * (clip_std / in_std) + (clip_mean - in_mean) / in_std`` ("affine"). Same maths, other
    rounding (about 1e-7 in fp32, more in bf16).
    """
    def stat(values):  # float32 first, then x's dtype, as the original's torch.Tensor(...).to(x)
        return torch.tensor(values, dtype=torch.float32).to(x).view(1, 3, 1, 1)
    clip_mean, clip_std = stat(CLIP_MEAN), stat(CLIP_STD)
    in_mean, in_std = stat(IMAGENET_MEAN), stat(IMAGENET_STD)
    if form == "affine":
        return x * (clip_std / in_std) + (clip_mean - in_mean) / in_std
    if form == "sequential":
        return (x * clip_std + clip_mean - in_mean) / in_std
    raise ValueError(f"unknown re-normalisation form {form!r}; known: sequential, affine")


class Dinov2Encoder(nn.Module):
    def __init__(self, cfg: Dinov2Config):
        super().__init__()
        self.cfg = cfg
        self.model = Dinov2Model(hf_config(cfg))
        if cfg.stem == "conv":
            self.model.embeddings.patch_embeddings.projection = ConvStem(cfg.width, cfg.patch_size)

    @property
    def width(self) -> int:
        return self.cfg.width

    def position_embeddings(self, grid: int) -> torch.Tensor:
        """(1, 1 + grid^2, width) position embeddings resized as the DINOv2 hub code does.

        Bicubic in fp32 without antialias; with ``interpolate_offset`` > 0 the resize is driven by
        the scale factor (grid + offset) / native, which samples slightly different points than
        resizing to ``grid`` (what transformers does) - the released SPHINX ran the hub code.
        """
        table = self.model.embeddings.position_embeddings
        native = int((table.shape[1] - 1) ** 0.5)
        if grid == native:
            return table
        patches = table[:, 1:].float().reshape(1, native, native, -1).permute(0, 3, 1, 2)
        offset = self.cfg.interpolate_offset
        resize = ({"scale_factor": ((grid + offset) / native,) * 2} if offset
                  else {"size": (grid, grid)})
        patches = F.interpolate(patches, mode="bicubic", align_corners=False, antialias=False,
                                **resize)
        patches = patches.permute(0, 2, 3, 1).reshape(1, grid * grid, -1)
        return torch.cat([table[:, :1].float(), patches], dim=1).to(table.dtype)

    def prepare(self, views: torch.Tensor) -> torch.Tensor:
        """CLIP-normalised views (B, 3, v, v) -> the ImageNet-normalised input the tower sees."""
        x = clip_to_imagenet(views, self.cfg.renorm)
        return x.to(self.model.embeddings.patch_embeddings.projection.weight.dtype)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """ImageNet-normalised (B, 3, v, v) -> (B, 1 + (v/14)^2, width): normed CLS + patches."""
        emb = self.model.embeddings
        patches = emb.patch_embeddings(x)  # (B, g*g, C)
        cls = emb.cls_token.expand(patches.shape[0], -1, -1)
        grid = x.shape[-1] // self.cfg.patch_size
        h = torch.cat([cls, patches], dim=1) + self.position_embeddings(grid)
        return self.model.layernorm(self.model.encoder(h).last_hidden_state)

    def forward(self, views: torch.Tensor) -> torch.Tensor:
        """(B, 3, v, v) -> (B, 1 + (v/14)^2, width), as the hub code's ``forward_features``."""
        return self.features(self.prepare(views))
