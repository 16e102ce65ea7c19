"""Model configuration: one dataclass family and the named presets.

This module is the only place that knows the SPHINX variants. Everything else (token counts,
projector widths, view layouts) is derived from these values.

Geometry vocabulary used across the package:

* ``image_size`` (S): side of the padded square image the processor produces.
* ``grid`` (g): sub-image crops per side; ``g == 1`` means one global view only, otherwise the
  views are ``[global, crop_0 .. crop_{g*g-1}]`` in raster order.
* each encoder has a ``view_size`` (v): its global view is the image resized to v, its crops are
  tiles of the image resized to ``g * v``.
* every fused encoder yields ``1 + token_grid**2`` tokens per view (a CLS-like token first).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path


STEMS = ("patch", "conv")
"""How a ViT tower turns patches into tokens (``ClipConfig.stem``, ``Dinov2Config.stem``)."""


def check_stem(stem: str, patch_size: int) -> None:
    if stem not in STEMS:
        raise ValueError(f"unknown stem {stem!r}; choose among {list(STEMS)}")
    if stem == "conv" and (patch_size < 2 or patch_size & (patch_size - 1)):
        raise ValueError(f"stem 'conv' halves the view per layer: patch_size must be a power of "
                         f"2, got {patch_size}")


def with_vit_stem(cfg: SphinxConfig, stem: str) -> SphinxConfig:
    """``cfg`` with its CLIP and DINOv2 towers (those it has) on ``stem``; the Q-Former's EVA ViT
    keeps the patchify stem."""
    return dataclasses.replace(
        cfg, clip=cfg.clip and dataclasses.replace(cfg.clip, stem=stem),
        dinov2=cfg.dinov2 and dataclasses.replace(cfg.dinov2, stem=stem))


@dataclass
class LLMConfig:
    """LLaMA-2 decoder dimensions (Meta ``ModelArgs`` semantics)."""

    dim: int = 5120
    n_layers: int = 40
    n_heads: int = 40
    n_kv_heads: int | None = None
    vocab_size: int = 32000
    multiple_of: int = 256
    ffn_dim_multiplier: float | None = None
    hidden_dim: int | None = None  # SwiGLU width; derived from dim when None
    norm_eps: float = 1e-5
    rope_theta: float = 10000.0
    max_seq_len: int = 4096

    def __post_init__(self) -> None:
        if self.n_kv_heads is None:
            self.n_kv_heads = self.n_heads
        if self.dim % self.n_heads or self.n_heads % self.n_kv_heads:
            raise ValueError(
                f"dim ({self.dim}) must divide by n_heads ({self.n_heads}) and n_heads by "
                f"n_kv_heads ({self.n_kv_heads})"
            )
        if self.hidden_dim is None:
            hidden = int(2 * 4 * self.dim / 3)
            if self.ffn_dim_multiplier is not None:
                hidden = int(self.ffn_dim_multiplier * hidden)
            self.hidden_dim = self.multiple_of * ((hidden + self.multiple_of - 1) // self.multiple_of)

    @property
    def head_dim(self) -> int:
        return self.dim // self.n_heads


@dataclass
class ClipConfig:
    """OpenAI CLIP ViT vision tower; tokens = all positions after ``ln_post``, no projection."""

    width: int = 1024
    layers: int = 24
    heads: int = 16
    mlp_dim: int = 4096
    patch_size: int = 14
    image_size: int = 224  # native resolution of the position embedding
    view_size: int = 224
    # The released SPHINX code builds open_clip's ViT-L-14 without QuickGELU (exact GELU).
    hidden_act: str = "gelu"
    norm_eps: float = 1e-5
    # "patch": one patch_size-strided convolution (every released tower); "conv": stride-2 3x3
    # convolutions down to the patch grid (model.vision.stem, for towers trained from scratch)
    stem: str = "patch"

    def __post_init__(self) -> None:
        check_stem(self.stem, self.patch_size)

    @property
    def token_grid(self) -> int:
        return self.view_size // self.patch_size


@dataclass
class ConvNextConfig:
    """OpenCLIP ConvNeXt trunk; tokens = [GAP, last map after the head LayerNorm]."""

    dims: tuple[int, ...] = (384, 768, 1536, 3072)
    depths: tuple[int, ...] = (3, 4, 30, 3)
    norm_eps: float = 1e-5  # timm's convnext_xxlarge uses 1e-5 everywhere
    view_size: int = 224
    input_size: int = 256  # each view is nearest-resized (via fp16) to this size
    token_grid: int = 16  # map is repeat-interleaved up to this grid
    # The original nearest-resizes every view to input_size through fp16 (SPHINX-Tiny too, at the
    # same size, where only the rounding acts); SPHINX-Tiny-1k feeds its views as they are, so its
    # tiles (plain slices of the image) reach the trunk in full precision.
    resize_input: bool = True
    layer_scale_init: float = 1e-6  # initial LayerScale (timm's default); weights override it

    def __post_init__(self) -> None:
        if not self.resize_input and self.input_size != self.view_size:
            raise ValueError(f"resize_input=False needs input_size == view_size, got "
                             f"{self.input_size} and {self.view_size}")

    @property
    def width(self) -> int:
        return self.dims[-1]

    @property
    def stride(self) -> int:
        return 4 * 2 ** (len(self.dims) - 1)

    @property
    def upsample(self) -> int:
        native = self.input_size // self.stride
        if self.token_grid % native:
            raise ValueError(f"ConvNeXt map {native}x{native} cannot be repeated to {self.token_grid}")
        return self.token_grid // native


@dataclass
class Dinov2Config:
    """DINOv2 ViT; tokens = normed CLS + normed patches, input re-normalized to ImageNet stats."""

    width: int = 1536
    layers: int = 40
    heads: int = 24
    mlp_ratio: int = 4
    use_swiglu: bool = True
    patch_size: int = 14
    image_size: int = 518  # native position-embedding grid 37x37, interpolated per view
    view_size: int = 224
    layerscale_value: float = 1.0
    norm_eps: float = 1e-6
    # The hub code resizes position embeddings with scale factor (grid + 0.1) / native grid
    # (dinov2_vitg14's default); 0 means "resize to the grid size" as transformers does.
    interpolate_offset: float = 0.1
    # How the CLIP -> ImageNet re-normalisation is written ("sequential" in the four-encoder
    # variants, "affine" in the Tiny ones; see vision.dinov2.clip_to_imagenet): it rounds differently.
    renorm: str = "sequential"
    stem: str = "patch"  # as ClipConfig.stem

    def __post_init__(self) -> None:
        check_stem(self.stem, self.patch_size)
        if self.renorm not in ("sequential", "affine"):
            raise ValueError(f"renorm must be 'sequential' or 'affine', got {self.renorm!r}")

    @property
    def token_grid(self) -> int:
        return self.view_size // self.patch_size


@dataclass
class QFormerConfig:
    """BLIP-2 EVA ViT + Q-Former; tokens = the query outputs (``num_query_tokens``)."""

    vision_width: int = 1408
    vision_layers: int = 39
    vision_heads: int = 16
    vision_mlp_dim: int = 6144
    patch_size: int = 14
    width: int = 768
    layers: int = 12
    heads: int = 12
    mlp_dim: int = 3072
    cross_attention_frequency: int = 2
    num_query_tokens: int = 32
    view_size: int = 224


ENCODER_KINDS = ("clip", "convnext", "dinov2", "qformer")
FUSED_KINDS = ("clip", "convnext", "dinov2")  # channel-concat order of the fused encoders


@dataclass
class SphinxConfig:
    """A whole SPHINX model: decoder, encoders and view geometry."""

    name: str = "custom"
    image_size: int = 224
    grid: int = 1
    llm: LLMConfig = field(default_factory=LLMConfig)
    clip: ClipConfig | None = None
    convnext: ConvNextConfig | None = None
    dinov2: Dinov2Config | None = None
    qformer: QFormerConfig | None = None

    def __post_init__(self) -> None:
        for key, cls in (("llm", LLMConfig), ("clip", ClipConfig), ("convnext", ConvNextConfig),
                         ("dinov2", Dinov2Config), ("qformer", QFormerConfig)):
            value = getattr(self, key)
            if isinstance(value, dict):
                if "dims" in value:
                    value = {**value, "dims": tuple(value["dims"]), "depths": tuple(value["depths"])}
                setattr(self, key, cls(**value))
        if not self.fused_kinds:
            raise ValueError("a SPHINX model needs at least one of clip / convnext / dinov2")
        grids = {k: self.encoder(k).token_grid for k in self.fused_kinds}
        if len(set(grids.values())) != 1:
            raise ValueError(f"fused encoders must agree on the token grid, got {grids}")
        if self.grid < 1:
            raise ValueError(f"grid must be >= 1, got {self.grid}")

    def encoder(self, kind: str):
        return getattr(self, kind)

    @property
    def encoder_kinds(self) -> tuple[str, ...]:
        return tuple(k for k in ENCODER_KINDS if getattr(self, k) is not None)

    @property
    def fused_kinds(self) -> tuple[str, ...]:
        return tuple(k for k in FUSED_KINDS if getattr(self, k) is not None)

    @property
    def fused_width(self) -> int:
        """Channels of the concatenated [CLIP | ConvNeXt | DINOv2] features."""
        return sum(self.encoder(k).width for k in self.fused_kinds)

    @property
    def num_views(self) -> int:
        return 1 if self.grid == 1 else 1 + self.grid * self.grid

    @property
    def tokens_per_view(self) -> int:
        """Start + Q-Former queries + fused tokens + end."""
        fused = 1 + self.encoder(self.fused_kinds[0]).token_grid ** 2
        queries = self.qformer.num_query_tokens if self.qformer else 0
        return 2 + queries + fused

    @property
    def image_tokens(self) -> int:
        """Visual tokens one image occupies in the LLM sequence (start/end vectors included)."""
        return self.num_views * self.tokens_per_view

    # --- serialisation -------------------------------------------------------------------------
    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> SphinxConfig:
        # Freezing moved to the training config; configs saved before that still load.
        data = {k: v for k, v in data.items() if k != "freeze_encoders"}
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown SphinxConfig fields: {sorted(unknown)}")
        return cls(**data)

    def to_file(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2) + "\n")

    @classmethod
    def from_file(cls, path: str | Path) -> SphinxConfig:
        return cls.from_dict(json.loads(Path(path).read_text()))

    @classmethod
    def from_name(cls, name: str) -> SphinxConfig:
        if name not in PRESETS:
            raise KeyError(f"unknown preset {name!r}; known presets: {', '.join(PRESETS)}")
        return PRESETS[name]()


# --- presets -----------------------------------------------------------------------------------

def _sphinx(name: str, image_size: int, grid: int) -> SphinxConfig:
    """LLaMA-2-13B + the four encoders on 224-px views (llama_ens / ens5 / ens10)."""
    return SphinxConfig(name=name, image_size=image_size, grid=grid, llm=LLMConfig(),
                        clip=ClipConfig(), convnext=ConvNextConfig(), dinov2=Dinov2Config(),
                        qformer=QFormerConfig())


def _sphinx_tiny(name: str, image_size: int, grid: int) -> SphinxConfig:
    """TinyLlama-1.1B + ConvNeXt-XXL on 512-px views + DINOv2 on 224-px views (llama_ens_light).

    The original's Tiny (one view) rounds its ConvNeXt input through fp16, Tiny-1k (grid 2) does not.
    """
    llm = LLMConfig(dim=2048, n_layers=22, n_heads=32, n_kv_heads=4, hidden_dim=5632)
    return SphinxConfig(name=name, image_size=image_size, grid=grid, llm=llm,
                        convnext=ConvNextConfig(view_size=512, input_size=512,
                                                resize_input=grid == 1),
                        dinov2=Dinov2Config(renorm="affine"))


TOY_VOCAB = 1024  # size of the bundled toy tokenizer


def _toy_llm() -> LLMConfig:
    return LLMConfig(dim=64, n_layers=2, n_heads=4, n_kv_heads=2, vocab_size=TOY_VOCAB,
                     multiple_of=32, max_seq_len=1024)


def _toy(name: str, image_size: int, grid: int) -> SphinxConfig:
    """Same structure as ``sphinx`` at tiny widths: 56-px views, 4x4 token grid, 2x ConvNeXt repeat."""
    return SphinxConfig(
        name=name, image_size=image_size, grid=grid, llm=_toy_llm(),
        clip=ClipConfig(width=32, layers=2, heads=2, mlp_dim=64, image_size=56, view_size=56),
        convnext=ConvNextConfig(dims=(8, 16, 24, 32), depths=(1, 1, 1, 1), view_size=56,
                                input_size=64, token_grid=4),
        dinov2=Dinov2Config(width=32, layers=2, heads=2, image_size=70, view_size=56),
        qformer=QFormerConfig(vision_width=32, vision_layers=2, vision_heads=2, vision_mlp_dim=64,
                              width=32, layers=2, heads=2, mlp_dim=64, num_query_tokens=8,
                              view_size=56),
    )


def _toy_tiny(name: str, image_size: int, grid: int) -> SphinxConfig:
    """Same structure as ``sphinx-tiny``: ConvNeXt on 128-px views natively, DINOv2 on 56-px views."""
    return SphinxConfig(
        name=name, image_size=image_size, grid=grid, llm=_toy_llm(),
        convnext=ConvNextConfig(dims=(8, 16, 24, 32), depths=(1, 1, 1, 1), view_size=128,
                                input_size=128, token_grid=4, resize_input=grid == 1),
        dinov2=Dinov2Config(width=32, layers=2, heads=2, image_size=70, view_size=56,
                            renorm="affine"),
    )


def _toy_world(name: str) -> SphinxConfig:
    """SPHINX-1k's structure sized for training on a CPU (the toy world, docs/toy-world.md): the
    four encoder kinds on 64-px views, global + 2x2 sub-images of a 128-px square, a 4x4 token grid
    per view, 4 Q-Former queries and a dim-256 4-layer decoder: 115 visual tokens per image."""
    vit = dict(layers=2, heads=2, patch_size=16, image_size=64, view_size=64)
    return SphinxConfig(
        name=name, image_size=128, grid=2,
        llm=LLMConfig(dim=256, n_layers=4, n_heads=4, vocab_size=TOY_VOCAB, multiple_of=64,
                      max_seq_len=1024),
        clip=ClipConfig(width=64, mlp_dim=128, **vit),
        convnext=ConvNextConfig(dims=(32, 64, 96, 128), depths=(1, 1, 2, 1), view_size=64,
                                input_size=128, token_grid=4, layer_scale_init=1.0),
        dinov2=Dinov2Config(width=64, **vit),
        qformer=QFormerConfig(vision_width=64, vision_layers=2, vision_heads=2, vision_mlp_dim=128,
                              patch_size=16, width=64, layers=2, heads=2, mlp_dim=128,
                              num_query_tokens=4, view_size=64),
    )


PRESETS = {
    "sphinx": lambda: _sphinx("sphinx", 224, 1),
    "sphinx-1k": lambda: _sphinx("sphinx-1k", 448, 2),
    "sphinx-v2-1k": lambda: _sphinx("sphinx-v2-1k", 448, 2),
    "sphinx-2k": lambda: _sphinx("sphinx-2k", 672, 3),
    "sphinx-tiny": lambda: _sphinx_tiny("sphinx-tiny", 512, 1),
    "sphinx-tiny-1k": lambda: _sphinx_tiny("sphinx-tiny-1k", 1024, 2),
    "toy": lambda: _toy("toy", 56, 1),
    "toy-1k": lambda: _toy("toy-1k", 112, 2),
    "toy-2k": lambda: _toy("toy-2k", 168, 3),
    "toy-tiny": lambda: _toy_tiny("toy-tiny", 128, 1),
    "toy-tiny-1k": lambda: _toy_tiny("toy-tiny-1k", 256, 2),
    "toy-world": lambda: _toy_world("toy-world"),
}

PRESET_NAMES = tuple(PRESETS)
