"""A convolutional stem for the ViT towers of small presets (``stem: conv``).

A ViT cuts its view into patches with one strided convolution (``patch_size`` x ``patch_size``,
stride ``patch_size``): a linear map of each patch's pixels. The released towers learnt through
that on hundreds of millions of pictures; a tiny tower trained for minutes does not learn shapes
through it. Measured on the toy world (docs/toy-world.md, "Early convolutions"): a width-64
CLIP ViT trained on the per-cell shape target alone stayed near chance (0.445 held out) after
600 steps with the patchify stem, and reached 0.86-0.92 with this stem, the only change. The fix is
Xiao et al. 2021 ("Early convolutions help transformers see better"): stride-2 3x3 convolutions
with ReLU, as many as halve the view down to the patch grid, the last one to the tower's width.
The tokens keep their number, order and width: only how a patch becomes a token changes.
"""

from __future__ import annotations

import itertools
import math

import torch
from torch import nn

from ...config import check_stem


class ConvStem(nn.Module):
    """(B, 3, v, v) -> (B, width, v / patch, v / patch): log2(patch) stride-2 3x3 convolutions,
    ReLU between them, channels 16, 32, ... (at most ``width``) then ``width``."""

    def __init__(self, width: int, patch_size: int):
        super().__init__()
        check_stem("conv", patch_size)
        depth = int(math.log2(patch_size))
        chans = [3] + [min(width, 16 * 2 ** i) for i in range(depth - 1)] + [width]
        layers: list[nn.Module] = []
        for i, (a, b) in enumerate(itertools.pairwise(chans)):
            layers.append(nn.Conv2d(a, b, 3, stride=2, padding=1))
            if i < depth - 1:
                layers.append(nn.ReLU())
        self.layers = nn.Sequential(*layers)

    @property
    def weight(self) -> torch.Tensor:
        """The last convolution's weight: transformers' embeddings read the input dtype from
        ``patch_embedding.weight`` (CLIP) and ``projection.weight`` (DINOv2)."""
        return self.layers[-1].weight

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)
