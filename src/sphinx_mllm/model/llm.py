"""LLaMA-2 decoder with Meta parameter names, interleaved RoPE, GQA and a static KV cache.

Parameter names match Meta's ``consolidated.*.pth`` (and SPHINX's ``llma.*``) so checkpoints map
one to one: ``tok_embeddings``, ``layers.N.attention.{wq,wk,wv,wo}``,
``layers.N.feed_forward.{w1,w2,w3}``, ``layers.N.{attention_norm,ffn_norm}``, ``norm``, ``output``.
"""

from __future__ import annotations

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
        # Normalise in fp32 whatever the activation dtype, as the original does.
        xf = x.float()
        xf = xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + self.eps)
        return xf.type_as(x) * self.weight


def rope_table(head_dim: int, max_positions: int, theta: float) -> torch.Tensor:
    """(max_positions, head_dim // 2, 2) table of (cos, sin) in fp32."""
    freqs = 1.0 / theta ** (torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim)
    angles = torch.outer(torch.arange(max_positions, dtype=torch.float32), freqs)
    return torch.stack([angles.cos(), angles.sin()], dim=-1)


def apply_rope(x: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
    """Rotate consecutive channel pairs (Meta / "interleaved" convention).

    x: (B, T, H, D); table: (B, T, D/2, 2) gathered at each token's position.
    """
    xf = x.float().unflatten(-1, (-1, 2))  # (B, T, H, D/2, 2)
    cos, sin = table[:, :, None, :, 0], table[:, :, None, :, 1]
    real = xf[..., 0] * cos - xf[..., 1] * sin
    imag = xf[..., 1] * cos + xf[..., 0] * sin
    return torch.stack([real, imag], dim=-1).flatten(-2).type_as(x)


class KVCache(nn.Module):
    """Static per-layer cache, (B, n_kv_heads, max_seq_len, head_dim); rows write independently."""

    def __init__(self, batch: int, n_kv_heads: int, max_seq_len: int, head_dim: int,
                 dtype: torch.dtype, device: torch.device | str | None = None):
        super().__init__()
        shape = (batch, n_kv_heads, max_seq_len, head_dim)
        self.register_buffer("k", torch.zeros(shape, dtype=dtype, device=device), persistent=False)
        self.register_buffer("v", torch.zeros(shape, dtype=dtype, device=device), persistent=False)

    def update(self, input_pos: torch.Tensor, k: torch.Tensor, v: torch.Tensor):
        """Write k, v (B, Hkv, T, D) at input_pos (B, T); return the whole cache."""
        rows = torch.arange(k.shape[0], device=k.device)[:, None]
        self.k[rows, :, input_pos] = k.transpose(1, 2)
        self.v[rows, :, input_pos] = v.transpose(1, 2)
        return self.k, self.v


class Attention(nn.Module):
    def __init__(self, cfg: LLMConfig):
        super().__init__()
        self.n_heads, self.n_kv_heads, self.head_dim = cfg.n_heads, cfg.n_kv_heads, cfg.head_dim
        self.wq = nn.Linear(cfg.dim, cfg.n_heads * cfg.head_dim, bias=False)
        self.wk = nn.Linear(cfg.dim, cfg.n_kv_heads * cfg.head_dim, bias=False)
        self.wv = nn.Linear(cfg.dim, cfg.n_kv_heads * cfg.head_dim, bias=False)
        self.wo = nn.Linear(cfg.n_heads * cfg.head_dim, cfg.dim, bias=False)
        self.kv_cache: KVCache | None = None

    def forward(self, x: torch.Tensor, rope: torch.Tensor, input_pos: torch.Tensor,
                mask: torch.Tensor | None) -> torch.Tensor:
        B, T, _ = x.shape
        q = apply_rope(self.wq(x).view(B, T, self.n_heads, self.head_dim), rope)
        k = apply_rope(self.wk(x).view(B, T, self.n_kv_heads, self.head_dim), rope)
        v = self.wv(x).view(B, T, self.n_kv_heads, self.head_dim)
        q, k, v = (t.transpose(1, 2) for t in (q, k, v))  # (B, H, T, D)
        if self.kv_cache is not None:
            k, v = self.kv_cache.update(input_pos, k, v)  # (B, Hkv, S, D)
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

    def forward(self, x, rope, input_pos, mask):
        h = x + self.attention(self.attention_norm(x), rope, input_pos, mask)
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
        self.register_buffer("rope", rope_table(cfg.head_dim, 2 * cfg.max_seq_len, cfg.rope_theta),
                             persistent=False)
        self.cache_len = 0

    def setup_caches(self, batch: int, max_seq_len: int | None = None,
                     dtype: torch.dtype | None = None) -> None:
        """Allocate a static KV cache in every layer; :meth:`clear_caches` frees them.

        One generation at a time: raises RuntimeError while caches are in use.
        """
        if self.cache_len:
            raise RuntimeError("the model's KV cache is in use by another generation; finish or "
                               "close that one first (one generation per model at a time)")
        max_seq_len = max_seq_len or self.cfg.max_seq_len
        dtype = dtype or self.output.weight.dtype
        for layer in self.layers:
            layer.attention.kv_cache = KVCache(batch, self.cfg.n_kv_heads, max_seq_len,
                                               self.cfg.head_dim, dtype, self.output.weight.device)
        self.cache_len = max_seq_len

    def clear_caches(self) -> None:
        for layer in self.layers:
            layer.attention.kv_cache = None
        self.cache_len = 0

    def forward(self, h: torch.Tensor, input_pos: torch.Tensor | None = None) -> torch.Tensor:
        """Hidden states after the final norm.

        h: (B, T, dim) input embeddings. input_pos: (B, T) absolute positions (default 0..T-1).
        Without a cache attention is causal over ``h``; with one, each query attends to the cached
        keys at positions <= its own.
        """
        B, T, _ = h.shape
        if input_pos is None:
            input_pos = torch.arange(T, device=h.device).expand(B, T)
        if input_pos.max() >= self.rope.shape[0]:
            raise ValueError(f"position {int(input_pos.max())} exceeds the RoPE table "
                             f"({self.rope.shape[0]} positions)")
        rope = self.rope[input_pos]  # (B, T, D/2, 2)
        mask = None
        if self.cache_len:
            keys = torch.arange(self.cache_len, device=h.device)
            mask = (keys <= input_pos[..., None])[:, None]  # (B, 1, T, S)
        for layer in self.layers:
            h = layer(h, rope, input_pos, mask)
        return self.norm(h)
