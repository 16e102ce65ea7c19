"""Each encoder wrapper's tokens equal a direct computation with the same weights."""

import pytest
import torch
import torch.nn.functional as F

from sphinx_mllm.config import SphinxConfig
from sphinx_mllm.model.vision import (
    ClipEncoder,
    ConvNextEncoder,
    Dinov2Encoder,
    QFormerEncoder,
)
from sphinx_mllm.model.vision.dinov2 import clip_to_imagenet

CFG = SphinxConfig.from_name("toy")
TINY = SphinxConfig.from_name("toy-tiny")


def perturb(module: torch.nn.Module) -> torch.nn.Module:
    """Add noise to every weight: some towers init near-constant (BLIP-2's std is 1e-10)."""
    torch.manual_seed(2)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    return module.eval()


def views(size: int, n: int = 2) -> torch.Tensor:
    torch.manual_seed(1)
    return torch.randn(n, 3, size, size)


@torch.no_grad()
def test_clip_takes_every_token_after_ln_post():
    enc = perturb(ClipEncoder(CFG.clip))
    x = views(56)
    m = enc.model
    h = m.embeddings(x)  # CLS + 16 patches with positions
    h = m.pre_layrnorm(h)
    h = m.encoder(inputs_embeds=h).last_hidden_state
    expected = F.layer_norm(h, (32,), m.post_layernorm.weight, m.post_layernorm.bias, 1e-5)
    got = enc(x)
    assert got.shape == (2, 1 + 4 * 4, 32)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)


@torch.no_grad()
def test_convnext_upsamples_the_head_normed_map_and_prepends_gap():
    enc = perturb(ConvNextEncoder(CFG.convnext))
    x = views(56)
    # direct: nearest 56 -> 64 through fp16, trunk, LayerNorm per location, 2x2 -> 4x4 by index
    x64 = F.interpolate(x.half(), size=(64, 64), mode="nearest").float()
    fmap = enc.model.encoder(enc.model.embeddings(x64)).last_hidden_state  # (2, 32, 2, 2)
    assert fmap.shape == (2, 32, 2, 2)
    ln = enc.model.layernorm
    normed = F.layer_norm(fmap.permute(0, 2, 3, 1), (32,), ln.weight, ln.bias, 1e-5)
    rows = torch.arange(4) // 2
    up = normed[:, rows][:, :, rows]  # token (r, c) = map (r // 2, c // 2)
    patches = up.reshape(2, 16, 32)
    expected = torch.cat([patches.mean(1, keepdim=True), patches], dim=1)
    got = enc(x)
    assert got.shape == (2, 17, 32)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)
    # the GAP token equals the mean of the un-repeated map as well
    torch.testing.assert_close(got[:, 0], normed.mean((1, 2)), atol=1e-5, rtol=1e-5)


@torch.no_grad()
def test_convnext_uses_timm_xxlarge_layernorm_eps():
    enc = ConvNextEncoder(CFG.convnext)
    eps = {m.eps for m in enc.modules() if isinstance(m, torch.nn.LayerNorm)}
    assert eps == {1e-5}


@torch.no_grad()
def test_convnext_native_grid_for_tiny():
    enc = ConvNextEncoder(TINY.convnext).eval()
    assert enc(views(128, 1)).shape == (1, 17, 32)  # 128 / 32 = 4x4, no repeat


@torch.no_grad()
def test_dinov2_renormalises_to_imagenet():
    import dataclasses
    enc = perturb(Dinov2Encoder(dataclasses.replace(CFG.dinov2, interpolate_offset=0.0)))
    x = views(56)
    clip_mean = torch.tensor([0.48145466, 0.4578275, 0.40821073]).view(1, 3, 1, 1)
    clip_std = torch.tensor([0.26862954, 0.26130258, 0.27577711]).view(1, 3, 1, 1)
    in_mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    in_std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    pixels01 = x * clip_std + clip_mean
    # with a size-driven resize the wrapper is exactly transformers' Dinov2Model
    expected = enc.model(pixel_values=(pixels01 - in_mean) / in_std).last_hidden_state
    got = enc(x)
    assert got.shape == (2, 17, 32)  # native 5x5 position grid interpolated to 4x4
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)
    assert not torch.allclose(got, enc.model(pixel_values=x).last_hidden_state)


@torch.no_grad()
def test_dinov2_resizes_positions_like_the_hub_code():
    enc = perturb(Dinov2Encoder(CFG.dinov2))  # interpolate_offset 0.1, as dinov2_vitg14
    table = enc.model.embeddings.position_embeddings  # (1, 1 + 5*5, 32)
    grid = table[:, 1:].reshape(1, 5, 5, 32).permute(0, 3, 1, 2)
    # hub rule: bicubic with scale factor (4 + 0.1) / 5 -> output 4x4, no antialias
    resized = F.interpolate(grid, scale_factor=(4.1 / 5, 4.1 / 5), mode="bicubic")
    expected = torch.cat([table[:, :1], resized.flatten(2).transpose(1, 2)], dim=1)
    torch.testing.assert_close(enc.position_embeddings(4), expected)
    by_size = F.interpolate(grid, size=(4, 4), mode="bicubic")
    assert not torch.allclose(resized, by_size)  # the two rules really differ
    assert enc.position_embeddings(5) is table  # native grid: untouched


@torch.no_grad()
def test_qformer_returns_query_outputs():
    enc = perturb(QFormerEncoder(CFG.qformer))
    x = views(56)
    image_embeds = enc.vision_model(pixel_values=x).last_hidden_state
    expected = enc.qformer(query_embeds=enc.query_tokens.expand(2, -1, -1),
                           encoder_hidden_states=image_embeds).last_hidden_state
    got = enc(x)
    assert got.shape == (2, 8, 32)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)
    # the queries really look at the image
    assert not torch.allclose(got[0], got[1])


# --- the Tiny variants' input paths (pinned against the original's llama_ens(5)_light) ---------

TINY_1K = SphinxConfig.from_name("toy-tiny-1k")


def test_tiny_presets_follow_the_original_input_paths():
    for name in ("sphinx-tiny", "toy-tiny"):
        cfg = SphinxConfig.from_name(name)
        assert cfg.convnext.resize_input and cfg.dinov2.renorm == "affine"
    for name in ("sphinx-tiny-1k", "toy-tiny-1k"):
        cfg = SphinxConfig.from_name(name)
        assert not cfg.convnext.resize_input and cfg.dinov2.renorm == "affine"
    for name in ("sphinx", "sphinx-1k", "sphinx-2k"):
        cfg = SphinxConfig.from_name(name)
        assert cfg.convnext.resize_input and cfg.dinov2.renorm == "sequential"


def test_convnext_without_resize_needs_matching_sizes():
    import dataclasses

    import pytest
    with pytest.raises(ValueError, match="input_size == view_size"):
        dataclasses.replace(TINY_1K.convnext, input_size=256)


@torch.no_grad()
def test_convnext_tiny_rounds_its_input_through_fp16_and_tiny_1k_does_not():
    x = views(128)
    assert not torch.equal(x.half().float(), x)  # random input is not fp16-exact
    tiny = ConvNextEncoder(TINY.convnext)
    assert torch.equal(tiny.prepare(x), x.half().float())  # same size: only the rounding acts
    tiny_1k = perturb(ConvNextEncoder(TINY_1K.convnext))
    assert tiny_1k.prepare(x) is x
    fmap = tiny_1k.feature_map(x)
    assert fmap.shape == (2, 4, 4, 32)  # 128 / 32: native grid, no repeat
    patches = fmap.flatten(1, 2)
    torch.testing.assert_close(tiny_1k(x), torch.cat([patches.mean(1, keepdim=True), patches], 1))
    assert not torch.allclose(tiny_1k(x), tiny_1k(x.half().float()), atol=1e-6, rtol=0)


@torch.no_grad()
def test_tiny_1k_convnext_sees_exact_tiles_and_dinov2_quadrants_of_a_2v_resize(monkeypatch):
    from sphinx_mllm.model import build
    model = build(TINY_1K).eval()
    seen = {}

    def recording(kind, step):
        def wrapped(x):
            seen[kind] = x  # what the tower itself receives, after the encoder's own prepare()
            return step(x)
        return wrapped

    for kind, name in (("convnext", "feature_map"), ("dinov2", "features")):
        encoder = model.encoders[kind]
        monkeypatch.setattr(encoder, name, recording(kind, getattr(encoder, name)))
    torch.manual_seed(3)
    image = torch.randn(1, 3, 256, 256)
    model.encode_views(image)
    conv, dino = seen["convnext"], seen["dinov2"]  # (5, 3, 128, 128) and (5, 3, 56, 56)
    global_128 = F.interpolate(image.half(), size=(128, 128), mode="bicubic").float()
    assert torch.equal(conv[0], global_128[0])
    tiles = [image[0, :, r:r + 128, c:c + 128] for r in (0, 128) for c in (0, 128)]
    assert all(torch.equal(conv[1 + i], t) for i, t in enumerate(tiles))  # full precision
    big = F.interpolate(image.half(), size=(112, 112), mode="bicubic").float()
    quads = [big[0, :, r:r + 56, c:c + 56] for r in (0, 56) for c in (0, 56)]
    assert all(torch.equal(dino[1 + i], clip_to_imagenet(q[None], "affine")[0])
               for i, q in enumerate(quads))


def test_dinov2_renormalisation_forms_round_differently():
    from sphinx_mllm.constants import CLIP_MEAN, CLIP_STD, IMAGENET_MEAN, IMAGENET_STD
    x = views(56, 4)
    def stat(values):
        return torch.tensor(values).view(1, 3, 1, 1)
    sequential = (x * stat(CLIP_STD) + stat(CLIP_MEAN) - stat(IMAGENET_MEAN)) / stat(IMAGENET_STD)
    affine = (x * (stat(CLIP_STD) / stat(IMAGENET_STD))
              + (stat(CLIP_MEAN) - stat(IMAGENET_MEAN)) / stat(IMAGENET_STD))
    assert torch.equal(clip_to_imagenet(x, "sequential"), sequential)
    assert torch.equal(clip_to_imagenet(x, "affine"), affine)
    torch.testing.assert_close(affine, sequential, atol=1e-6, rtol=0)
    assert not torch.equal(affine, sequential)  # other rounding: the Tiny variants need "affine"
    assert torch.equal(Dinov2Encoder(TINY.dinov2).prepare(x), affine)
    assert torch.equal(Dinov2Encoder(CFG.dinov2).prepare(x), sequential)


def test_convnext_layer_scale_init_is_a_preset_choice():
    """timm's LayerScale starts at 1e-6 (real presets; released weights overwrite it anyway); the
    toy-world preset starts it at 1.0 so a short from-scratch stage can train its blocks."""
    real = ConvNextEncoder(CFG.convnext)
    toy = ConvNextEncoder(SphinxConfig.from_name("toy-world").convnext)
    scales = {name: [m.layer_scale_parameter for m in enc.model.modules()
                     if getattr(m, "layer_scale_parameter", None) is not None]
              for name, enc in (("real", real), ("toy", toy))}
    assert scales["real"] and all(torch.all(s == 1e-6) for s in scales["real"])
    assert scales["toy"] and all(torch.all(s == 1.0) for s in scales["toy"])


@torch.no_grad()
def test_conv_stem_keeps_the_token_layout_and_replaces_only_the_patchify_step():
    """stem "conv" (toy-world's ViTs with ``vit_stem=conv``): 4 stride-2 3x3 convolutions for
    patch 16, ReLU between, the same (1 + grid^2, width) tokens; what follows the stem is the
    tower as before."""
    from sphinx_mllm.config import PRESETS, with_vit_stem
    from sphinx_mllm.model.vision.stem import ConvStem

    # every preset keeps the released patchify stem; toy-world's bundled model was trained on it
    towers = [t for p in PRESETS.values() for t in (p().clip, p().dinov2) if t is not None]
    assert towers and all(t.stem == "patch" for t in towers)
    cfg = with_vit_stem(SphinxConfig.from_name("toy-world"), "conv")
    assert cfg.clip.stem == cfg.dinov2.stem == "conv"
    x = views(64)
    for enc in (perturb(ClipEncoder(cfg.clip)), perturb(Dinov2Encoder(cfg.dinov2))):
        stem = (enc.model.embeddings.patch_embedding if isinstance(enc, ClipEncoder)
                else enc.model.embeddings.patch_embeddings.projection)
        assert isinstance(stem, ConvStem)
        convs = [m for m in stem.layers if isinstance(m, torch.nn.Conv2d)]
        assert [(c.in_channels, c.out_channels, c.stride) for c in convs] == [
            (3, 16, (2, 2)), (16, 32, (2, 2)), (32, 64, (2, 2)), (64, 64, (2, 2))]
        assert sum(isinstance(m, torch.nn.ReLU) for m in stem.layers) == 3
        assert stem.weight is convs[-1].weight
        assert enc(x).shape == (2, 1 + 4 * 4, 64)
    # the grid tokens see the stem's output, position by position
    enc = perturb(ClipEncoder(cfg.clip))
    m = enc.model
    h = m.embeddings.patch_embedding(x).flatten(2).transpose(1, 2)
    h = torch.cat([m.embeddings.class_embedding.expand(2, 1, -1), h], 1)
    h = m.pre_layrnorm(h + m.embeddings.position_embedding.weight)
    h = m.post_layernorm(m.encoder(inputs_embeds=h).last_hidden_state)
    torch.testing.assert_close(enc(x), h, atol=1e-5, rtol=1e-5)


def test_stem_is_checked():
    from sphinx_mllm.config import ClipConfig, Dinov2Config

    with pytest.raises(ValueError, match="unknown stem"):
        ClipConfig(stem="hybrid")
    with pytest.raises(ValueError, match="power of 2"):
        Dinov2Config(stem="conv", patch_size=14)
