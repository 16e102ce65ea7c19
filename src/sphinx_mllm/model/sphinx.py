"""SPHINX: frozen vision encoders + projections + start/end vectors + the LLaMA decoder."""

from __future__ import annotations

import contextlib

import torch
from torch import nn

from ..config import SphinxConfig
from ..constants import IMAGE_PLACEHOLDER_ID
from .llm import LayerKV, Transformer, rope_table
from .projector import projection
from .views import make_views
from .vision import ENCODERS


class SphinxModel(nn.Module):
    def __init__(self, cfg: SphinxConfig):
        super().__init__()
        self.cfg = cfg
        self.encoders = nn.ModuleDict({k: ENCODERS[k](cfg.encoder(k)) for k in cfg.encoder_kinds})
        self.visual_proj, self.qformer_proj, self.start_img, self.end_img = _new_adapters(cfg)
        self.llm = Transformer(cfg.llm)

    # --- where and in what ------------------------------------------------------------------
    @property
    def device(self) -> torch.device:
        """The device of the LLM (the embedding table, which is never quantized)."""
        return self.llm.tok_embeddings.weight.device

    @property
    def dtype(self) -> torch.dtype:
        """The LLM's activation dtype (the embedding table's; quantized linears keep it too)."""
        return self.llm.tok_embeddings.weight.dtype

    # --- vision --------------------------------------------------------------------------------
    def encode_views(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        """Run every encoder once on all its views of all images: {kind: (V*N, tokens, width)},
        view-major. Encoders that share a view size share the cut views.

        Frozen encoders (no parameter requires grad; training decides, see ``train.freeze``) run
        without autograd so that their activations are not kept.
        """
        frozen = not any(p.requires_grad for p in self.encoders.parameters())
        feats, views = {}, {}
        with torch.no_grad() if frozen else contextlib.nullcontext():
            for kind, encoder in self.encoders.items():
                size = self.cfg.encoder(kind).view_size
                if size not in views:
                    views[size] = make_views(images, size, self.cfg.grid)
                feats[kind] = encoder(views[size].to(self._encoder_dtype(encoder)))
        return feats

    def encode_images(self, images: torch.Tensor) -> torch.Tensor:
        """(N, 3, S, S) CLIP-normalised padded squares -> (N, image_tokens, dim) LLM-ready tokens."""
        n = images.shape[0]
        feats = self.encode_views(images)
        dtype = self.visual_proj[0].weight.dtype  # the adapters' dtype (trainable glue)
        fused = torch.cat([feats[k] for k in self.cfg.fused_kinds], dim=-1)  # (V*N, 1+g*g, C)
        parts = [self.visual_proj(fused.to(dtype))]
        if self.qformer_proj is not None:
            parts.insert(0, self.qformer_proj(feats["qformer"].to(dtype)))  # (V*N, Q, dim)
        tokens = torch.cat(parts, dim=1)
        start = self.start_img.to(dtype).expand(tokens.shape[0], -1, -1)
        end = self.end_img.to(dtype).expand(tokens.shape[0], -1, -1)
        tokens = torch.cat([start, tokens, end], dim=1)  # (V*N, tokens_per_view, dim)
        # view-major -> per image: [global, crop_0, ...] concatenated along the sequence
        return tokens.unflatten(0, (self.cfg.num_views, n)).transpose(0, 1).flatten(1, 2)

    @staticmethod
    def _encoder_dtype(encoder: nn.Module) -> torch.dtype:
        return next(encoder.parameters()).dtype

    # --- language ------------------------------------------------------------------------------
    def embed(self, input_ids: torch.Tensor, images: torch.Tensor | None = None) -> torch.Tensor:
        """Token embeddings with visual tokens scattered into the placeholder positions.

        input_ids: (B, T) with ``image_tokens`` placeholders per image, in row order.
        images: (N, 3, S, S) or None. Raises ValueError when placeholders and images disagree.
        """
        is_image = input_ids == IMAGE_PLACEHOLDER_ID
        found = int(is_image.sum())
        expected = 0 if images is None else images.shape[0] * self.cfg.image_tokens
        if found != expected:
            n_images = 0 if images is None else images.shape[0]
            raise ValueError(f"input has {found} image placeholders but {n_images} image(s) need "
                             f"{expected} ({self.cfg.image_tokens} per image for {self.cfg.name})")
        h = self.llm.tok_embeddings(input_ids.masked_fill(is_image, 0))
        if images is not None:
            visual = self.encode_images(images).to(h.dtype)
            h = h.masked_scatter(is_image[..., None], visual)
        return h

    def forward(self, input_ids: torch.Tensor, images: torch.Tensor | None = None,
                input_pos: torch.Tensor | None = None, logit_index: torch.Tensor | None = None,
                cache: list[LayerKV] | None = None) -> torch.Tensor:
        """Logits (float32) for training and generation alike.

        input_ids: (B, T); input_pos: (B, T) absolute positions (default 0..T-1, contiguous over
        placeholders as in SPHINX); logit_index: (B,) to return only (B, 1, V) at those positions.
        cache: per-layer KV windows (``KVCache.window``) owned by the caller; None for a plain
        causal pass over the whole sequence (training). The model keeps no state between calls.
        """
        return self.forward_embeddings(self.embed(input_ids, images), input_pos, logit_index, cache)

    def forward_embeddings(self, h: torch.Tensor, input_pos: torch.Tensor | None = None,
                           logit_index: torch.Tensor | None = None,
                           cache: list[LayerKV] | None = None) -> torch.Tensor:
        h = self.llm(h, input_pos, cache)  # (B, T, dim)
        if logit_index is not None:
            h = h[torch.arange(h.shape[0], device=h.device), logit_index][:, None]
        return self.llm.output(h).float()

    # --- utilities -----------------------------------------------------------------------------
    def fresh_adapters(self) -> dict[str, torch.Tensor]:
        """Newly initialised projections and start/end vectors (on CPU), keyed by our names."""
        with torch.device("cpu"):
            visual_proj, qformer_proj, start, end = _new_adapters(self.cfg)
        state = {"start_img": start.data, "end_img": end.data}
        for name, module in (("visual_proj", visual_proj), ("qformer_proj", qformer_proj)):
            if module is not None:
                state.update({f"{name}.{k}": v for k, v in module.state_dict().items()})
        return state

    def reset_buffers(self) -> None:
        """Recompute non-persistent buffers (the RoPE table), e.g. after building on ``meta``."""
        llm = self.llm
        llm.rope = rope_table(llm.cfg.head_dim, llm.rope_positions(llm.cfg),
                              llm.cfg.rope_theta).to(self.device)
        for encoder in self.encoders.values():
            if hasattr(encoder, "reset_buffers"):
                encoder.reset_buffers()
        left = [name for name, buf in self.named_buffers() if buf.is_meta]
        if left:
            raise RuntimeError(f"buffers still on the meta device after reset: {left}")

    def param_counts(self) -> dict:
        """Parameter counts by part: llm, projector (projections + start/end), vision per encoder."""
        def count(module):
            return sum(p.numel() for p in module.parameters())
        vision = {k: count(e) for k, e in self.encoders.items()}
        projector = count(self.visual_proj) + self.start_img.numel() + self.end_img.numel()
        if self.qformer_proj is not None:
            projector += count(self.qformer_proj)
        llm = count(self.llm)
        return {"llm": llm, "projector": projector, "vision": vision,
                "total": llm + projector + sum(vision.values())}


def _new_adapters(cfg: SphinxConfig):
    """Trainable glue between encoders and LLM, initialised as in SPHINX (start/end ~ U[0, 1))."""
    dim = cfg.llm.dim
    visual_proj = projection(cfg.fused_width, dim)
    qformer_proj = projection(cfg.qformer.width, dim) if cfg.qformer else None
    return (visual_proj, qformer_proj, nn.Parameter(torch.rand(1, 1, dim)),
            nn.Parameter(torch.rand(1, 1, dim)))
