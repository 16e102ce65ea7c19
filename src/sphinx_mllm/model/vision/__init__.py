"""Frozen vision towers. Each wrapper maps CLIP-normalised views (B, 3, v, v) to tokens (B, N, C).

The towers are transformers modules built from a config (never downloaded); the wrappers add
exactly SPHINX's feature extraction on top.
"""

from .clip import ClipEncoder
from .convnext import ConvNextEncoder
from .dinov2 import Dinov2Encoder
from .qformer import QFormerEncoder

ENCODERS = {
    "clip": ClipEncoder,
    "convnext": ConvNextEncoder,
    "dinov2": Dinov2Encoder,
    "qformer": QFormerEncoder,
}

__all__ = ["ENCODERS", "ClipEncoder", "ConvNextEncoder", "Dinov2Encoder", "QFormerEncoder"]
