import pytest
import torch

from sphinx_mllm.constants import IMAGE_PLACEHOLDER_ID as PH
from sphinx_mllm.inference.generate import (SamplingParams, generate, sample, top_k_filter,
                                            top_p_filter)


def never_stop(tokens):
    return False


def prompt(cfg, text):
    return [1] + [PH] * cfg.image_tokens + list(text)


@torch.no_grad()
def greedy_without_cache(model, ids, images, n):
    """Reference: full forward over the growing sequence, argmax of the last position."""
    ids = list(ids)
    out = []
    for _ in range(n):
        logits = model(torch.tensor([ids]), images)[0, -1]
        out.append(int(logits.argmax()))
        ids.append(out[-1])
    return out


def test_cached_greedy_equals_uncached_argmax(sharp_model):
    cfg = sharp_model.cfg
    torch.manual_seed(4)
    images = torch.randn(1, 3, 112, 112)
    ids = prompt(cfg, [5, 17, 300, 42])
    got = generate(sharp_model, [ids], images, SamplingParams(max_new_tokens=12), never_stop)[0]
    assert got == greedy_without_cache(sharp_model, ids, images, 12)
    assert len(set(got)) > 1  # not a degenerate repetition


def test_batched_generation_equals_one_by_one(sharp_model):
    cfg = sharp_model.cfg
    torch.manual_seed(5)
    images = torch.randn(3, 3, 112, 112)
    prompts = [prompt(cfg, [5, 6]), prompt(cfg, [7, 8, 9, 10, 11, 12, 13]), prompt(cfg, [14, 15, 16])]
    params = SamplingParams(max_new_tokens=10)
    batched = generate(sharp_model, prompts, images, params, never_stop)
    single = [generate(sharp_model, [p], images[i:i + 1], params, never_stop)[0]
              for i, p in enumerate(prompts)]
    assert batched == single


def test_text_only_batch_and_stop_function(sharp_model):
    params = SamplingParams(max_new_tokens=8)
    free = generate(sharp_model, [[1, 5, 6]], None, params, never_stop)[0]
    stop_at = free[2]
    stopped = generate(sharp_model, [[1, 5, 6]], None, params, lambda toks: toks[-1] == stop_at)[0]
    assert stopped == free[:free.index(stop_at) + 1]


def test_prompt_that_does_not_fit_is_a_clear_error(sharp_model):
    cfg = sharp_model.cfg  # max_seq_len 1024, 135 visual tokens
    ids = prompt(cfg, [5] * 800)
    with pytest.raises(ValueError, match=r"936 tokens .* max_new_tokens 100 = 1036 exceeds max_seq_len 1024"):
        generate(sharp_model, [ids], torch.randn(1, 3, 112, 112), SamplingParams(max_new_tokens=100),
                 never_stop)


def test_sampling_is_seeded_and_respects_filters(sharp_model):
    cfg = sharp_model.cfg
    images = torch.randn(1, 3, 112, 112)
    ids = prompt(cfg, [5, 6])
    params = SamplingParams(max_new_tokens=8, temperature=1.5, top_p=0.9, top_k=50, seed=7)
    a = generate(sharp_model, [ids], images, params, never_stop)[0]
    b = generate(sharp_model, [ids], images, params, never_stop)[0]
    assert a == b


def test_top_k_and_top_p_filters():
    logits = torch.tensor([[0.0, 3.0, 1.0, 2.0]])
    assert torch.isinf(top_k_filter(logits, 2)).tolist() == [[True, False, True, False]]
    probs = torch.tensor([[0.1, 0.5, 0.15, 0.25]])
    # sorted 0.5, 0.25, 0.15, 0.1; preceding mass 0, 0.5, 0.75, 0.9 -> p=0.6 keeps 0.5 and 0.25
    kept = top_p_filter(probs, 0.6)
    torch.testing.assert_close(kept, torch.tensor([[0.0, 0.5 / 0.75, 0.0, 0.25 / 0.75]]))
    assert sample(logits, SamplingParams(temperature=0)).tolist() == [1]
    g = torch.Generator().manual_seed(0)
    draws = {int(sample(logits, SamplingParams(temperature=1.0, top_k=1), g)) for _ in range(20)}
    assert draws == {1}


def test_invalid_sampling_params():
    with pytest.raises(ValueError):
        SamplingParams(top_p=0)
    with pytest.raises(ValueError):
        SamplingParams(max_new_tokens=0)
