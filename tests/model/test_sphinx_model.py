import pytest
import torch

from sphinx_mllm import build
from sphinx_mllm.constants import IMAGE_PLACEHOLDER_ID as PH
from sphinx_mllm.model.views import resize_bicubic
from sphinx_mllm.train.freeze import apply_trainable


def image_ids(cfg, text=(5, 6, 7), n_images=1):
    return torch.tensor([[1] + [PH] * cfg.image_tokens * n_images + list(text)])


@torch.no_grad()
def test_each_view_is_encoded_like_a_single_view_model(toy_model):
    """toy-1k = [start, view, end] x [global, TL, TR, BL, BR]; each equals the 1-view toy model."""
    single = build("toy")
    single.load_state_dict(toy_model.state_dict())  # same modules, different geometry
    torch.manual_seed(3)
    img = torch.randn(1, 3, 112, 112)
    tokens = toy_model.encode_images(img)
    cfg = toy_model.cfg
    assert tokens.shape == (1, cfg.image_tokens, cfg.llm.dim)
    views = [resize_bicubic(img, 56), img[..., :56, :56], img[..., :56, 56:], img[..., 56:, :56],
             img[..., 56:, 56:]]
    per_view = tokens.view(5, cfg.tokens_per_view, -1)
    for k, view in enumerate(views):
        torch.testing.assert_close(per_view[k], single.encode_images(view)[0], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(per_view[:, 0], toy_model.start_img[0].expand(5, -1))
    torch.testing.assert_close(per_view[:, -1], toy_model.end_img[0].expand(5, -1))


@torch.no_grad()
def test_visual_tokens_fill_the_placeholders(toy_model):
    cfg = toy_model.cfg
    img = torch.randn(1, 3, 112, 112)
    ids = image_ids(cfg)
    h = toy_model.embed(ids, img)
    torch.testing.assert_close(h[0, 1:1 + cfg.image_tokens], toy_model.encode_images(img)[0])
    torch.testing.assert_close(h[0, 0], toy_model.llm.tok_embeddings.weight[1])


def test_placeholder_count_mismatch_raises(toy_model):
    cfg = toy_model.cfg
    img = torch.randn(1, 3, 112, 112)
    with pytest.raises(ValueError, match=r"134 image placeholders but 1 image\(s\) need 135"):
        toy_model(torch.tensor([[1] + [PH] * (cfg.image_tokens - 1) + [5]]), img)
    with pytest.raises(ValueError, match="placeholders"):
        toy_model(image_ids(cfg), None)
    with pytest.raises(ValueError, match="placeholders"):
        toy_model(image_ids(cfg), torch.randn(2, 3, 112, 112))


@torch.no_grad()
def test_text_only_and_image_batches(toy_model):
    assert toy_model(torch.tensor([[1, 5, 6, 7]])).shape == (1, 4, toy_model.cfg.llm.vocab_size)
    ids = torch.cat([image_ids(toy_model.cfg), image_ids(toy_model.cfg, text=(9, 9, 9))])
    logits = toy_model(ids, torch.randn(2, 3, 112, 112))
    assert logits.dtype == torch.float32 and torch.isfinite(logits).all()


def test_encoders_are_frozen_and_the_rest_trains():
    model = build("toy")
    apply_trainable(model)
    frozen = {n for n, p in model.named_parameters() if not p.requires_grad}
    assert frozen and all(n.startswith("encoders.") for n in frozen)
    assert all(p.requires_grad for n, p in model.named_parameters() if not n.startswith("encoders."))
    ids = image_ids(model.cfg)
    model(ids, torch.randn(1, 3, 56, 56)).sum().backward()
    assert model.visual_proj[0].weight.grad is not None and model.start_img.grad is not None
    assert model.llm.layers[0].attention.wq.weight.grad is not None


def test_meta_build_allocates_nothing_and_counts_real_sizes():
    model = build("sphinx-1k", device="meta")
    assert all(p.is_meta for p in model.parameters())
    counts = model.param_counts()
    assert abs(counts["llm"] - 13.0e9) / 13.0e9 < 0.005
    assert 3.3e9 < sum(counts["vision"].values()) < 3.5e9


@pytest.mark.parametrize("name", ["toy-2k", "toy-tiny", "toy-tiny-1k"])
@torch.no_grad()
def test_every_toy_family_runs(name):
    model = build(name)
    cfg = model.cfg
    logits = model(image_ids(cfg), torch.randn(1, 3, cfg.image_size, cfg.image_size))
    assert logits.shape == (1, 1 + cfg.image_tokens + 3, cfg.llm.vocab_size)


@torch.no_grad()
def test_bf16_model_runs_with_fp32_norms():
    model = build("toy", dtype=torch.bfloat16)
    assert model.llm.output.weight.dtype == torch.bfloat16
    logits = model(image_ids(model.cfg), torch.randn(1, 3, 56, 56, dtype=torch.bfloat16))
    assert logits.dtype == torch.float32 and torch.isfinite(logits).all()
    assert model.llm.rope.dtype == torch.float32


@torch.no_grad()
def test_casting_a_built_model_keeps_the_rope_table_fp32():
    torch.manual_seed(0)
    model = build("toy")
    ids, image = image_ids(model.cfg), torch.randn(1, 3, 56, 56)
    want, rope = model(ids, image), model.llm.rope.clone()
    got = model.to(torch.bfloat16)(ids, image.bfloat16())  # cast after building, as a user might
    assert model.llm.output.weight.dtype == torch.bfloat16
    assert model.llm.rope.dtype == torch.float32 and torch.equal(model.llm.rope, rope)
    assert (got - want).abs().max() < 0.1 * want.abs().max()


def test_training_forward_keeps_no_state_and_backpropagates(toy_model):
    """The training contract: forward without a cache is causal, differentiable, stateless."""
    model = build("toy-1k")
    model.load_state_dict(toy_model.state_dict())
    ids = torch.tensor([[1, 5, 6, 7, 8]])
    first = model(ids)
    first[0, -1].logsumexp(-1).backward()
    grad = model.llm.layers[0].attention.wq.weight.grad
    assert grad is not None and grad.abs().sum() > 0
    assert [name for name, _ in model.llm.named_buffers()] == ["rope"]  # no cache inside
    with torch.no_grad():
        torch.testing.assert_close(model(ids), first.detach())  # nothing carried between calls
        shorter = model(ids[:, :3])
    torch.testing.assert_close(shorter, first.detach()[:, :3], atol=1e-5, rtol=1e-5)  # causal
