"""Our decoder vs transformers' LlamaForCausalLM with the same (converted) random weights."""

import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM

from sphinx_mllm.checkpoint.hf_llama import hf_to_meta, llm_config_from_hf, permute_rope, unpermute_rope
from sphinx_mllm.model.llm import Transformer


def hf_llama(n_kv_heads: int) -> LlamaForCausalLM:
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=300, hidden_size=64, intermediate_size=160, num_hidden_layers=2,
                      num_attention_heads=8, num_key_value_heads=n_kv_heads, rms_norm_eps=1e-5,
                      max_position_embeddings=256, tie_word_embeddings=False)
    model = LlamaForCausalLM(cfg).eval()
    with torch.no_grad():  # HF inits norms to 1; randomise them so the mapping is really tested
        for name, p in model.named_parameters():
            if "norm" in name:
                p.uniform_(0.5, 1.5)
    return model


@pytest.mark.parametrize("n_kv_heads", [8, 2], ids=["mha", "gqa"])
def test_logits_match_hf_llama(n_kv_heads):
    hf = hf_llama(n_kv_heads)
    cfg = llm_config_from_hf(hf.config.to_dict(), max_seq_len=128)
    assert cfg.n_kv_heads == n_kv_heads and cfg.hidden_dim == 160
    ours = Transformer(cfg).eval()
    ours.load_state_dict(hf_to_meta(hf.state_dict(), cfg), strict=True)
    ids = torch.randint(0, 300, (2, 37))
    with torch.no_grad():
        expected = hf(input_ids=ids).logits
        got = ours.output(ours(ours.tok_embeddings(ids)))
    assert (got - expected).abs().max().item() <= 1e-5


def test_rope_permutation_round_trips_and_is_not_identity():
    w = torch.randn(64, 16)
    p = permute_rope(w, n_heads=4)
    assert not torch.equal(p, w)
    assert torch.equal(unpermute_rope(p, n_heads=4), w)


def test_unknown_hf_key_is_an_error():
    hf = hf_llama(8)
    cfg = llm_config_from_hf(hf.config.to_dict())
    state = dict(hf.state_dict(), **{"model.layers.0.mlp.extra.weight": torch.zeros(1)})
    with pytest.raises(KeyError, match="mlp.extra"):
        hf_to_meta(state, cfg)
