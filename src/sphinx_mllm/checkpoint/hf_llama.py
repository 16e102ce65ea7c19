"""LLaMA weights in Hugging Face layout <-> Meta layout (the names our decoder uses).

HF checkpoints store ``q_proj`` / ``k_proj`` rows permuted for the "rotate-half" RoPE; Meta's
interleaved RoPE (ours) needs them back in pair order, hence :func:`unpermute_rope`.
"""

from __future__ import annotations

import re

import torch

from ..config import LLMConfig

# HF name pattern -> Meta name template; ``{i}`` is the layer index.
_LAYER_NAMES = {
    "self_attn.q_proj": "attention.wq",
    "self_attn.k_proj": "attention.wk",
    "self_attn.v_proj": "attention.wv",
    "self_attn.o_proj": "attention.wo",
    "mlp.gate_proj": "feed_forward.w1",
    "mlp.down_proj": "feed_forward.w2",
    "mlp.up_proj": "feed_forward.w3",
    "input_layernorm": "attention_norm",
    "post_attention_layernorm": "ffn_norm",
}
_TOP_NAMES = {"model.embed_tokens": "tok_embeddings", "model.norm": "norm", "lm_head": "output"}
_LAYER_RE = re.compile(r"model\.layers\.(\d+)\.(.+)\.weight")


def permute_rope(w: torch.Tensor, n_heads: int) -> torch.Tensor:
    """Meta (pairs interleaved) -> HF (halves) row order of a q/k projection (out, in)."""
    out, inp = w.shape
    return w.view(n_heads, out // n_heads // 2, 2, inp).transpose(1, 2).reshape(out, inp)


def unpermute_rope(w: torch.Tensor, n_heads: int) -> torch.Tensor:
    """HF (halves) -> Meta (pairs interleaved) row order; inverse of :func:`permute_rope`."""
    out, inp = w.shape
    return w.view(n_heads, 2, out // n_heads // 2, inp).transpose(1, 2).reshape(out, inp)


def meta_name(name: str, cfg: LLMConfig) -> tuple[str, int | None] | None:
    """(Meta name, heads to un-permute or None) of an HF LLaMA weight; None for RoPE buffers.

    Unknown names raise KeyError.
    """
    if name.endswith("rotary_emb.inv_freq"):
        return None
    match = _LAYER_RE.fullmatch(name)
    if match:
        layer, part = match.groups()
        if part not in _LAYER_NAMES:
            raise KeyError(f"unexpected LLaMA weight {name!r}")
        heads = {"self_attn.q_proj": cfg.n_heads, "self_attn.k_proj": cfg.n_kv_heads}.get(part)
        return f"layers.{layer}.{_LAYER_NAMES[part]}.weight", heads
    if name.removesuffix(".weight") in _TOP_NAMES:
        return _TOP_NAMES[name.removesuffix(".weight")] + ".weight", None
    raise KeyError(f"unexpected LLaMA weight {name!r}")


def hf_to_meta(state: dict[str, torch.Tensor], cfg: LLMConfig) -> dict[str, torch.Tensor]:
    """Rename (and un-permute q/k of) an HF ``LlamaForCausalLM`` state dict to Meta names."""
    out = {}
    for name, tensor in state.items():
        mapped = meta_name(name, cfg)
        if mapped is not None:
            meta, heads = mapped
            out[meta] = tensor if heads is None else unpermute_rope(tensor, heads)
    return out


def llm_config_from_hf(hf: dict, max_seq_len: int = 4096) -> LLMConfig:
    """LLMConfig from an HF LLaMA ``config.json`` dict (transformers 4 or 5 RoPE fields)."""
    theta = hf.get("rope_theta") or (hf.get("rope_parameters") or {}).get("rope_theta", 10000.0)
    return LLMConfig(dim=hf["hidden_size"], n_layers=hf["num_hidden_layers"],
                     n_heads=hf["num_attention_heads"],
                     n_kv_heads=hf.get("num_key_value_heads", hf["num_attention_heads"]),
                     vocab_size=hf["vocab_size"], hidden_dim=hf["intermediate_size"],
                     norm_eps=hf.get("rms_norm_eps", 1e-5), rope_theta=float(theta),
                     max_seq_len=max_seq_len)
