"""Weight-only quantization of the LLM's linear layers; encoders, projections and embeddings stay
in their dtype (spec section 10: quantizing the vision towers broke the original).

Two backends, both maintained libraries' kernels, none of ours:

* ``"torchao"`` (optional extra ``sphinx-mllm[quantize]``): torchao's ``Int8WeightOnlyConfig``
  (per-channel int8) and ``Int4WeightOnlyConfig`` (groups of 128, tinygemm packing) through
  ``quantize_``. The GPU path; int4 needs bf16 on CUDA (prepared, not yet run on a GPU).
* ``"torch"`` (int8 only, no extra): PyTorch's own int8 weight-only matmul,
  ``aten._weight_int8pack_mm`` (the kernel torchao's CPU int8 path used before its 0.10 tensor
  rewrite), with the same recipe: symmetric, one scale per output channel. The CPU default: on
  this project's CPU torchao 0.18's int8 layer ran slower than the bf16 layer it replaces, this
  kernel about 2x faster (see docs/benchmarks.md). Fast with bf16 activations; fp32 works but
  takes its slow path.

Layers keep their attribute names (``wq`` ... ``w3``, ``output``) and call style.
"""

from __future__ import annotations

import torch
from torch import nn

MODES = ("int8", "int4")


class Int8Linear(nn.Module):
    """y = x W^T with W stored as int8 (out, in) and one scale per output row."""

    def __init__(self, weight_int8: torch.Tensor, scales: torch.Tensor):
        super().__init__()
        self.in_features, self.out_features = weight_int8.shape[1], weight_int8.shape[0]
        self.register_buffer("weight", weight_int8)
        self.register_buffer("scales", scales)

    @classmethod
    def from_linear(cls, linear: nn.Linear) -> Int8Linear:
        if linear.bias is not None:
            raise ValueError("Int8Linear quantizes bias-free layers (the LLaMA decoder's)")
        w = linear.weight.detach().float()
        scales = (w.abs().amax(dim=1) / 127).clamp(min=1e-12)  # (out,)
        q = torch.round(w / scales[:, None]).clamp(-128, 127).to(torch.int8)
        return cls(q, scales.to(linear.weight.dtype))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        flat = x.reshape(-1, self.in_features)
        out = torch.ops.aten._weight_int8pack_mm(flat, self.weight, self.scales.to(x.dtype))
        return out.view(*x.shape[:-1], self.out_features)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, int8 weights"


def _llm_linears(llm: nn.Module) -> list[tuple[nn.Module, str, nn.Linear]]:
    """(parent, attribute, layer) for every nn.Linear in the decoder (attention, FFN, output)."""
    found = []
    for parent in llm.modules():
        for name, child in parent.named_children():
            if type(child) is nn.Linear:
                found.append((parent, name, child))
    return found


def quantize_llm(model, mode: str, backend: str | None = None):
    """Quantize ``model.llm``'s linear weights in place (``mode`` "int8" or "int4"); returns the
    model. ``backend``: "torch" (int8) or "torchao"; default "torch" for int8 on a CPU, else
    "torchao". Raises ValueError for an unknown mode, ImportError when torchao is needed and
    missing."""
    if mode not in MODES:
        raise ValueError(f"quantize must be one of {MODES}, got {mode!r}")
    if backend is None:
        backend = "torch" if mode == "int8" and model.device.type == "cpu" else "torchao"
    if backend == "torch":
        if mode != "int8":
            raise ValueError("the torch backend does int8 only; int4 needs torchao")
        for parent, name, linear in _llm_linears(model.llm):
            setattr(parent, name, Int8Linear.from_linear(linear))
        return model
    if backend != "torchao":
        raise ValueError(f"unknown quantization backend {backend!r} (torch, torchao)")
    try:
        from torchao.quantization import Int4WeightOnlyConfig, Int8WeightOnlyConfig, quantize_
    except ImportError as err:
        raise ImportError("quantize with torchao needs the optional extra: "
                          "pip install 'sphinx-mllm[quantize]'") from err
    if mode == "int8":
        config = Int8WeightOnlyConfig()
    else:  # tinygemm's packing: bf16 on CUDA (torchao 0.18's default "plain" needs mslk)
        config = Int4WeightOnlyConfig(group_size=128, int4_packing_format="tile_packed_to_4d")
    quantize_(model.llm, config, filter_fn=lambda module, fqn: type(module) is nn.Linear)
    return model
