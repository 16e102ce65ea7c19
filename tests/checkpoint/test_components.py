"""``assemble``: a SPHINX checkpoint from component weights in their upstream layouts."""

import json

import pytest
import torch
from safetensors.torch import save_file
from transformers import CLIPVisionModel, Dinov2Model, LlamaConfig, LlamaForCausalLM

import sphinx_mllm
from sphinx_mllm.checkpoint import components, keymap, ours
from sphinx_mllm.config import SphinxConfig
from sphinx_mllm.inference.pipeline import bundled_tokenizer_path
from sphinx_mllm.model.vision import clip as clip_mod
from sphinx_mllm.model.vision import dinov2 as dino_mod

CFG = SphinxConfig.from_name("toy")


def perturbed(module):
    torch.manual_seed(3)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    return module.eval()


@pytest.fixture(scope="module")
def parts(tmp_path_factory):
    root = tmp_path_factory.mktemp("components")
    llm = LlamaForCausalLM(LlamaConfig(
        vocab_size=1024, hidden_size=64, intermediate_size=192, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=False)).eval()
    llm.save_pretrained(root / "llm")
    clip = perturbed(CLIPVisionModel(clip_mod.hf_config(CFG.clip)))
    clip.save_pretrained(root / "clip")
    dino = perturbed(Dinov2Model(dino_mod.hf_config(CFG.dinov2)))
    dino.save_pretrained(root / "dinov2")
    donor = perturbed(sphinx_mllm.build("toy"))  # supplies ConvNeXt and BLIP-2 tensors
    canonical = keymap.to_canonical(donor.state_dict())
    convnext = {"visual.trunk." + k.removeprefix("openclip_convnext_xxl."): v.clone()
                for k, v in canonical.items() if k.startswith("openclip_convnext_xxl.")}
    convnext["visual.head.proj.weight"] = torch.zeros(4, 32)  # open_clip's projection: unused
    convnext["text.token_embedding.weight"] = torch.zeros(4, 4)
    torch.save(convnext, root / "open_clip_pytorch_model.bin")
    blip = {k.removeprefix("qformer."): v.contiguous() for k, v in canonical.items()
            if k.startswith("qformer.")}
    blip["language_model.lm_head.weight"] = torch.zeros(4, 4)
    (root / "blip2").mkdir()
    save_file(blip, str(root / "blip2" / "model.safetensors"))
    return root, llm, clip, dino, donor


@torch.no_grad()
def test_assembled_checkpoint_reproduces_every_component(tmp_path, parts):
    root, llm, clip, dino, donor = parts
    out = components.assemble(
        "toy", llm=root / "llm", tokenizer=bundled_tokenizer_path(), out=tmp_path / "ck",
        encoders={"clip": root / "clip", "convnext": root / "open_clip_pytorch_model.bin",
                  "dinov2": root / "dinov2", "qformer": root / "blip2"}, dtype=torch.float32)
    model = ours.load(out)
    ids = torch.randint(3, 1000, (1, 9))
    torch.testing.assert_close(model.forward(ids), llm(input_ids=ids).logits, atol=1e-5, rtol=0)
    x = torch.randn(2, 3, 56, 56)
    enc = model.encoders
    torch.testing.assert_close(enc["clip"](x), clip.post_layernorm(clip(pixel_values=x).last_hidden_state))
    # DINOv2: same weights -> same tokens (position resize as the hub code; see test_vision)
    src_dino = dino_mod.Dinov2Encoder(CFG.dinov2)
    src_dino.model = dino
    torch.testing.assert_close(enc["dinov2"](x), src_dino(x))
    torch.testing.assert_close(enc["convnext"](x), donor.encoders["convnext"](x))
    torch.testing.assert_close(enc["qformer"](x), donor.encoders["qformer"](x))
    assert json.loads((out / ours.INDEX).read_text())["metadata"]["format"] == "sphinx-mllm"
    assert 0 <= float(model.start_img.min()) and float(model.start_img.max()) < 1


def test_open_clip_and_hub_layouts(tmp_path, parts):
    root, *_ , donor = parts
    canonical = keymap.to_canonical(donor.state_dict())
    torch.save({k.removeprefix("clip."): v for k, v in canonical.items() if k.startswith("clip.")},
               tmp_path / "openclip.bin")
    got = components.read_clip(tmp_path / "openclip.bin")
    assert set(got) == {k for k in canonical if k.startswith("clip.")}
    torch.save({k.removeprefix("dinov2_vitg14."): v for k, v in canonical.items()
                if k.startswith("dinov2_vitg14.")}, tmp_path / "dinov2_vitg14.pth")
    hub = components.read_dinov2(tmp_path / "dinov2_vitg14.pth")
    hf = components.read_dinov2(root / "dinov2")
    assert set(hub) == set(hf) == {k for k in canonical if k.startswith("dinov2_vitg14.")}


def test_blip2_separate_q_and_v_biases_become_one_qkv_bias(tmp_path):
    q, v = torch.arange(4.0), torch.arange(4.0) + 10
    save_file({"vision_model.encoder.layers.0.self_attn.q_bias": q,
               "vision_model.encoder.layers.0.self_attn.v_bias": v}, str(tmp_path / "m.safetensors"))
    got = components.read_blip2(tmp_path)
    bias = got["qformer.vision_model.encoder.layers.0.self_attn.qkv.bias"].load()
    assert torch.equal(bias, torch.cat([q, torch.zeros(4), v]))


def test_assemble_names_missing_components(tmp_path, parts):
    root, *_ = parts
    with pytest.raises(ValueError, match=r"missing \['qformer'\]"):
        components.assemble("toy", llm=root / "llm", tokenizer=bundled_tokenizer_path(),
                            out=tmp_path / "x", encoders={"clip": root / "clip",
                                                          "convnext": root / "open_clip_pytorch_model.bin",
                                                          "dinov2": root / "dinov2"})


def test_meta_llm_shards_are_merged_along_their_split_dimension(tmp_path):
    """Meta's consolidated.*.pth in two model-parallel shards: split tensors are concatenated
    (shape known before loading), replicated ones taken from the first shard."""
    torch.manual_seed(0)
    full = {"tok_embeddings.weight": torch.randn(16, 8),  # split along dim 1
            "layers.0.attention.wq.weight": torch.randn(8, 8),  # dim 0
            "layers.0.attention.wo.weight": torch.randn(8, 8),  # dim 1
            "layers.0.attention_norm.weight": torch.randn(8),  # replicated
            "rope.freqs": torch.randn(4)}  # dropped
    halves = [{}, {}]
    for name, t in full.items():
        dim = {"tok_embeddings.weight": 1, "layers.0.attention.wq.weight": 0,
               "layers.0.attention.wo.weight": 1}.get(name)
        for i in range(2):
            halves[i][name] = t if dim is None else t.chunk(2, dim)[i].clone()
    for i, half in enumerate(halves):
        torch.save(half, tmp_path / f"consolidated.0{i}.pth")
    (tmp_path / "params.json").write_text(json.dumps({"dim": 8, "n_layers": 1, "n_heads": 2}))
    tensors, cfg = components.read_llm(tmp_path)
    assert "rope.freqs" not in tensors and cfg.vocab_size == 16
    for name, lazy in tensors.items():
        assert lazy.shape == tuple(full[name].shape), name
        torch.testing.assert_close(lazy.load(), full[name], rtol=0, atol=0)
