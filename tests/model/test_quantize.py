"""Weight-only int8 of the LLM's linears: only those change, logits stay close, generation works."""

import pytest
import torch
from torch import nn

from sphinx_mllm import build
from sphinx_mllm.inference.generate import SamplingParams, generate
from sphinx_mllm.model.quantize import Int8Linear, quantize_llm


def test_int8_quantizes_only_the_llm_linears_and_reports_its_logit_difference():
    torch.manual_seed(0)
    model = build("toy-1k", dtype=torch.bfloat16)
    ids = torch.tensor([[1, 5, 6, 7, 8, 9, 10]])
    with torch.inference_mode():
        reference = model(ids)
    vision = {k: v.clone() for k, v in model.encoders.state_dict().items()}
    quantize_llm(model, "int8")
    attn = model.llm.layers[0].attention
    assert all(isinstance(getattr(attn, n), Int8Linear) for n in ("wq", "wk", "wv", "wo"))
    assert isinstance(model.llm.output, Int8Linear) and attn.wq.weight.dtype == torch.int8
    assert isinstance(model.llm.tok_embeddings, nn.Embedding) and model.dtype == torch.bfloat16
    assert not any(isinstance(m, Int8Linear) for m in model.encoders.modules())
    assert all(torch.equal(v, model.encoders.state_dict()[k]) for k, v in vision.items())
    with torch.inference_mode():
        diff = (model(ids) - reference).abs().max().item()
    print(f"int8 vs bf16 max abs logit difference (toy-1k, 7 tokens): {diff:.4f}")
    assert 0 < diff < 0.05 * reference.abs().max().item()
    out = generate(model, [[1, 5, 6]], None, SamplingParams(max_new_tokens=4), lambda t: False)
    assert len(out[0]) == 4


def test_int8_linear_matches_dequantized_weights():
    torch.manual_seed(1)
    linear = nn.Linear(64, 96, bias=False).to(torch.bfloat16)
    q = Int8Linear.from_linear(linear)
    x = torch.randn(3, 5, 64, dtype=torch.bfloat16)
    dequant = q.weight.float() * q.scales.float()[:, None]
    torch.testing.assert_close(q(x).float(), x.float() @ dequant.T, atol=0.05, rtol=0.02)
    assert (dequant - linear.weight.float()).abs().max() <= q.scales.float().max() / 2 + 1e-3


def test_unknown_modes_are_errors():
    model = build("toy")
    with pytest.raises(ValueError, match="quantize must be one of"):
        quantize_llm(model, "int3")
    with pytest.raises(ValueError, match="int8 only"):
        quantize_llm(model, "int4", backend="torch")
