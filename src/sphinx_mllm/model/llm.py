"""LLaMA-2 decoder with Meta parameter names, interleaved RoPE, GQA; the KV cache it is given.

Parameter names match Meta's ``consolidated.*.pth`` (and SPHINX's ``llma.*``) so checkpoints map
one to one: ``tok_embeddings``, ``layers.N.attention.{wq,wk,wv,wo}``,
``layers.N.feed_forward.{w1,w2,w3}``, ``layers.N.{attention_norm,ffn_norm}``, ``norm``, ``output``.
"""

from __future__ import annotations

from typing import NamedTuple, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..config import LLMConfig


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Normalise in fp32 whatever the activation dtype, as the original does. Written as
        # sum * (1 / dim): aten's mean and rms_norm cost several times more per call on CPU,
        # which shows when a decode step is dominated by per-op overhead.
        xf = x.float()
        scale = xf.square().sum(-1, keepdim=True).mul_(1 / x.shape[-1]).add_(self.eps).rsqrt_()
        return (xf * scale).type_as(x) * self.weight


def rope_table(head_dim: int, max_positions: int, theta: float) -> torch.Tensor:
    """(max_positions, head_dim // 2, 2) table of (cos, sin) in fp32."""
    freqs = 1.0 / theta ** (torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim)
    angles = torch.outer(torch.arange(max_positions, dtype=torch.float32), freqs)
    return torch.stack([angles.cos(), angles.sin()], dim=-1)


def apply_rope(x: torch.Tensor, rotation: torch.Tensor) -> torch.Tensor:
    """Rotate consecutive channel pairs (Meta / "interleaved" convention).

    x: (B, T, H, D); rotation: (B, T, 1, D/2, 2) (cos, sin) of each token's angles
    (:meth:`Transformer.rotations`). Eager, as one complex product like Meta's
    ``apply_rotary_emb`` (few ops: a decode step of a small model is per-op overhead); under
    ``torch.compile`` in real arithmetic, which inductor fuses (it has no complex kernels).
    """
    xf = x.float().unflatten(-1, (-1, 2))  # (B, T, H, D/2, 2)
    if torch.compiler.is_compiling():
        (x0, x1), (cos, sin) = xf.unbind(-1), rotation.unbind(-1)
        out = torch.stack([x0 * cos - x1 * sin, x1 * cos + x0 * sin], dim=-1)
    else:
        out = torch.view_as_real(torch.view_as_complex(xf) * torch.view_as_complex(rotation))
    return out.flatten(-2).type_as(x)


class KVCache:
    """Static cache: per layer, ``k[i]`` and ``v[i]`` of (rows, n_kv_heads, max_seq_len, head_dim).

    Allocated once by its owner (the inference engine); the model never creates or keeps one.
    One tensor per layer and kind, not slices of one block: a compiled step that writes through a
    slice of a shared block is rewritten by the compiler into a copy of the whole block per write
    (measured on an H200, sphinx-1k decode: 29 ms a step at batch 1, 167 ms at batch 8).
    """

    def __init__(self, cfg: LLMConfig, rows: int, max_seq_len: int, dtype: torch.dtype,
                 device: torch.device | str | None = None):
        shape = (rows, cfg.n_kv_heads, max_seq_len, cfg.head_dim)
        self.k = [torch.zeros(shape, dtype=dtype, device=device) for _ in range(cfg.n_layers)]
        self.v = [torch.zeros(shape, dtype=dtype, device=device) for _ in range(cfg.n_layers)]

    @property
    def rows(self) -> int:
        return self.k[0].shape[0]

    @property
    def max_seq_len(self) -> int:
        return self.k[0].shape[2]

    def window(self, rows: slice = slice(None), length: int | None = None) -> list[LayerKV]:
        """Per-layer views of cache rows ``rows`` and positions ``[0, length)`` (default: all).

        Views, not copies: what attention writes through them lands in this cache. A shorter
        window means less attention work per step over the same stored keys. The whole cache is
        handed over as its own tensors (no view), as a compiled step needs.
        """
        start = rows.start or 0  # not rows.indices(): torch 2.11's compiler cannot trace it
        stop = self.rows if rows.stop is None else min(rows.stop, self.rows)
        length = self.max_seq_len if length is None else min(length, self.max_seq_len)
        if (start, stop, length) == (0, self.rows, self.max_seq_len):
            ks, vs = self.k, self.v
        else:
            ks = [t[start:stop, :, :length] for t in self.k]
            vs = [t[start:stop, :, :length] for t in self.v]
        index = torch.arange(stop - start, device=self.k[0].device)[:, None]  # shared by all layers
        return [LayerKV(k, v, index) for k, v in zip(ks, vs)]

    def read(self, row: int, length: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Copies of row ``row``'s first ``length`` positions: k, v of (n_layers, n_kv_heads,
        length, head_dim)."""
        return (torch.stack([t[row, :, :length] for t in self.k]),
                torch.stack([t[row, :, :length] for t in self.v]))

    def write(self, row: int, k: torch.Tensor, v: torch.Tensor) -> None:
        """Put ``k``, ``v`` (shaped as :meth:`read` returns) at row ``row``'s first positions."""
        for layer, (k_l, v_l) in enumerate(zip(k, v)):
            self.k[layer][row, :, :k_l.shape[1]] = k_l
            self.v[layer][row, :, :v_l.shape[1]] = v_l


class LayerKV(NamedTuple):
    """One layer's cache window, (B, n_kv_heads, S, head_dim) each; ``rows`` is (B, 1) 0..B-1."""

    k: torch.Tensor
    v: torch.Tensor
    rows: torch.Tensor

    def update(self, input_pos: torch.Tensor, k: torch.Tensor, v: torch.Tensor):
        """Write k, v (B, Hkv, T, D) at input_pos (B, T); return the whole window."""
        self.k[self.rows, :, input_pos] = k.transpose(1, 2)
        self.v[self.rows, :, input_pos] = v.transpose(1, 2)
        return self.k, self.v


class Attention(nn.Module):
    def __init__(self, cfg: LLMConfig):
        super().__init__()
        self.n_heads, self.n_kv_heads, self.head_dim = cfg.n_heads, cfg.n_kv_heads, cfg.head_dim
        self.wq = nn.Linear(cfg.dim, cfg.n_heads * cfg.head_dim, bias=False)
        self.wk = nn.Linear(cfg.dim, cfg.n_kv_heads * cfg.head_dim, bias=False)
        self.wv = nn.Linear(cfg.dim, cfg.n_kv_heads * cfg.head_dim, bias=False)
        self.wo = nn.Linear(cfg.n_heads * cfg.head_dim, cfg.dim, bias=False)

    def forward(self, x: torch.Tensor, rope: torch.Tensor, input_pos: torch.Tensor,
                mask: torch.Tensor | None, kv: LayerKV | None = None) -> torch.Tensor:
        """Causal self-attention over ``x`` alone (``kv`` None) or over the cache window ``kv``
        after writing this step's keys and values into it (``mask`` then says what is visible)."""
        B, T, _ = x.shape
        q = apply_rope(self.wq(x).view(B, T, self.n_heads, self.head_dim), rope)
        k = apply_rope(self.wk(x).view(B, T, self.n_kv_heads, self.head_dim), rope)
        v = self.wv(x).view(B, T, self.n_kv_heads, self.head_dim)
        q, k, v = (t.transpose(1, 2) for t in (q, k, v))  # (B, H, T, D)
        if kv is not None:
            k, v = kv.update(input_pos, k, v)  # (B, Hkv, S, D)
        out = F.scaled_dot_product_attention(
            q, k, v, attn_mask=mask, is_causal=mask is None,
            enable_gqa=self.n_kv_heads != self.n_heads)
        return self.wo(out.transpose(1, 2).reshape(B, T, -1))


class FeedForward(nn.Module):
    def __init__(self, cfg: LLMConfig):
        super().__init__()
        self.w1 = nn.Linear(cfg.dim, cfg.hidden_dim, bias=False)
        self.w2 = nn.Linear(cfg.hidden_dim, cfg.dim, bias=False)
        self.w3 = nn.Linear(cfg.dim, cfg.hidden_dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.w2(F.silu(self.w1(x)) * self.w3(x))


class TransformerBlock(nn.Module):
    def __init__(self, cfg: LLMConfig):
        super().__init__()
        self.attention = Attention(cfg)
        self.feed_forward = FeedForward(cfg)
        self.attention_norm = RMSNorm(cfg.dim, cfg.norm_eps)
        self.ffn_norm = RMSNorm(cfg.dim, cfg.norm_eps)

    def forward(self, x, rope, input_pos, mask, kv=None):
        h = x + self.attention(self.attention_norm(x), rope, input_pos, mask, kv)
        return h + self.feed_forward(self.ffn_norm(h))


class Transformer(nn.Module):
    """The decoder. ``forward`` takes embeddings so that visual tokens can be spliced in first."""

    def __init__(self, cfg: LLMConfig):
        super().__init__()
        self.cfg = cfg
        self.tok_embeddings = nn.Embedding(cfg.vocab_size, cfg.dim)
        self.layers = nn.ModuleList(TransformerBlock(cfg) for _ in range(cfg.n_layers))
        self.norm = RMSNorm(cfg.dim, cfg.norm_eps)
        self.output = nn.Linear(cfg.dim, cfg.vocab_size, bias=False)
        # Like the original, the table covers 2 * max_seq_len positions.
        self.register_buffer("rope", rope_table(cfg.head_dim, self.rope_positions(cfg),
                                                cfg.rope_theta), persistent=False)

    def _apply(self, fn, recurse=True):
        """``.to(dtype)`` / ``.half()`` cast the weights, never the RoPE table: it stays fp32,
        as the original's ``freqs_cis`` (a plain attribute) does; only its device follows."""
        rope = self.rope
        super()._apply(fn, recurse)
        if self.rope.dtype != rope.dtype:
            self.rope = rope.to(self.rope.device)
        return self

    @staticmethod
    def rope_positions(cfg: LLMConfig) -> int:
        """Positions the RoPE table covers (as the original: twice ``max_seq_len``)."""
        return 2 * cfg.max_seq_len

    def rotations(self, input_pos: torch.Tensor) -> torch.Tensor:
        """(B, T) positions -> (B, T, 1, D/2, 2) RoPE (cos, sin), gathered once for all layers."""
        return self.rope[input_pos][:, :, None]

    def forward(self, h: torch.Tensor, input_pos: torch.Tensor | None = None,
                cache: Sequence[LayerKV] | None = None) -> torch.Tensor:
        """Hidden states after the final norm.

        h: (B, T, dim) input embeddings. input_pos: (B, T) absolute positions (default 0..T-1).
        Without ``cache`` attention is causal over ``h`` (training). With one (per-layer windows of
        a :class:`KVCache`, ``B`` rows each) every token is written at its position and attends to
        the window's keys at positions <= its own. Positions must lie inside the RoPE table and
        the window; the caller (the engine) checks that, not this forward.
        """
        B, T, _ = h.shape
        if input_pos is None:
            input_pos = torch.arange(T, device=h.device).expand(B, T)
        rope = self.rotations(input_pos)  # (B, T, 1, D/2, 2)
        mask = None
        if cache is not None:
            keys = torch.arange(cache[0].k.shape[2], device=h.device)
            hidden = (keys > input_pos[..., None])[:, None]  # (B, 1, T, S) True = not visible
            # additive, in the activation dtype: SDPA would convert a boolean mask in every layer
            mask = torch.zeros(hidden.shape, dtype=h.dtype, device=h.device).masked_fill_(
                hidden, float("-inf"))
        for i, layer in enumerate(self.layers):
            h = layer(h, rope, input_pos, mask, None if cache is None else cache[i])
        return self.norm(h)
