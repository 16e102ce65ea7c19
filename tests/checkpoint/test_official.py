import json
from pathlib import Path

import pytest
import torch

import sphinx_mllm
from sphinx_mllm.checkpoint import keymap, official, ours
from sphinx_mllm.checkpoint.official import ReleasedCheckpoint
from sphinx_mllm.constants import IMAGE_PLACEHOLDER_ID as PH

LAYOUTS = {"toy": "llama_ens", "toy-1k": "llama_ens5"}  # sphinx / sphinx-1k structure, toy widths


def bf16_model(preset):
    torch.manual_seed(0)
    return sphinx_mllm.build(preset, dtype=torch.bfloat16)


@torch.no_grad()
def logits(model):
    cfg = model.cfg
    torch.manual_seed(1)
    img = torch.randn(1, 3, cfg.image_size, cfg.image_size, dtype=torch.bfloat16)
    return model(torch.tensor([[1] + [PH] * cfg.image_tokens + [5, 17, 300]]), img)


@pytest.mark.parametrize("preset", list(LAYOUTS))
@pytest.mark.parametrize("shards", [1, 2, 4])
@pytest.mark.parametrize("wrap", [True, False], ids=["model-dict", "bare"])
def test_released_checkpoint_gives_the_written_models_logits(tmp_path, released, preset, shards, wrap):
    model = bf16_model(preset)
    path = released(model, tmp_path / "ckpt", LAYOUTS[preset], shards=shards, wrap=wrap)
    loaded = official.load(path, preset=preset)
    assert loaded.llm.output.weight.dtype == torch.bfloat16
    assert torch.equal(logits(loaded), logits(model))


def test_convert_then_load_ours_and_round_trip(tmp_path, released):
    model = bf16_model("toy-1k")
    src = released(model, tmp_path / "released", "llama_ens5", shards=2)
    dst = official.convert(src, tmp_path / "ours", preset="toy-1k", max_shard_bytes=300_000)
    assert len(set(json.loads((dst / ours.INDEX).read_text())["weight_map"].values())) > 1
    converted = ours.load(dst)
    assert torch.equal(logits(converted), logits(model))
    again = ours.save(converted, dst / ours.TOKENIZER, tmp_path / "ours2", max_shard_bytes=300_000)
    for f in sorted(p.name for p in dst.glob("*.safetensors")):
        assert (dst / f).read_bytes() == (again / f).read_bytes()  # ours -> ours is bit-exact
    pipe = sphinx_mllm.load(dst)
    assert pipe.model.cfg.image_tokens == 135


def test_load_from_released_dir_through_the_pipeline(tmp_path, released):
    model = bf16_model("toy")
    path = released(model, tmp_path / "r", "llama_ens", shards=2)
    pipe = sphinx_mllm.load(path, preset="toy")
    assert pipe.model.dtype == torch.float32  # a small model runs in fp32 on a CPU (CPU_FP32_BELOW)
    assert torch.equal(logits(pipe.model), logits(model.float()))
    assert pipe.chat(None, "hello", max_new_tokens=2).tokens
    with pytest.raises(KeyError, match="missing"):  # meta.json says llama_ens: real encoders
        sphinx_mllm.load(path)


def test_llama_types_map_to_presets(tmp_path, released):
    path = released(bf16_model("toy"), tmp_path / "r", "llama_ens5", shards=1)
    ckpt = ReleasedCheckpoint(path)
    cfg = ckpt.config()
    assert cfg.image_tokens == 1455 and cfg.llm.dim == 64 and cfg.llm.vocab_size == 1024
    (path / "meta.json").write_text(json.dumps({"llama_type": "llama_qformerv2"}))
    with pytest.raises(ValueError, match="llama_qformerv2.*llama_ens5_light"):
        ReleasedCheckpoint(path).config()


def test_replicas_that_differ_warn(tmp_path, released):
    def perturb(rank, state):
        if rank == 1:
            state["llma.visual_proj.0.bias"] += 1
    path = released(bf16_model("toy"), tmp_path / "r", "llama_ens", shards=2, mutate=perturb)
    with pytest.warns(UserWarning, match="visual_proj.0.bias"):
        official.load(path, preset="toy")


@pytest.mark.parametrize("change,message", [
    (lambda state: state.pop("llma.layers.1.ffn_norm.weight"), "llm.layers.1.ffn_norm.weight"),
    (lambda state: state.__setitem__("llma.layers.0.attention.bogus", torch.zeros(2)),
     "layers.0.attention.bogus"),
])
def test_missing_or_unexpected_keys_are_named(tmp_path, released, change, message):
    path = released(bf16_model("toy"), tmp_path / "r", "llama_ens", shards=1,
                    mutate=lambda rank, state: change(state))
    with pytest.raises(KeyError, match=message):
        official.load(path, preset="toy")


def test_wrong_shape_is_named_before_loading(tmp_path, released):
    def widen(rank, state):
        state["llma.visual_proj.0.weight"] = torch.zeros(64, 7, dtype=torch.bfloat16)
    path = released(bf16_model("toy"), tmp_path / "r", "llama_ens", shards=1, mutate=widen)
    with pytest.raises(ValueError, match=r"visual_proj.0.weight: checkpoint \[64, 7\]"):
        official.load(path, preset="toy")


def test_incomplete_shard_set_is_an_error(tmp_path, released):
    path = released(bf16_model("toy"), tmp_path / "r", "llama_ens", shards=2)
    (path / "consolidated.01-of-02.model.pth").unlink()
    with pytest.raises(FileNotFoundError, match="incomplete shard set"):
        official.load(path, preset="toy")


FIXTURE = Path(__file__).parent / "data" / "sphinx-1k-keys.tsv"


def test_key_map_covers_the_real_sphinx_1k_state_dict():
    """Every released SPHINX-1k key maps onto our meta model, shapes and split dims agree."""
    rows = [line.split("\t") for line in FIXTURE.read_text().splitlines()[1:]]
    names = {k.removeprefix("llma."): [int(d) for d in s.strip("[]").split(",") if d.strip()]
             for k, s, _ in rows}
    assert len(names) == 2349
    model = sphinx_mllm.build("sphinx-1k", device="meta")
    expected = model.state_dict()
    plan = keymap.resolve(names, expected)  # raises on any missing / unexpected key
    keymap.check_shapes(plan, names, expected)
    assert sorted(plan.dropped) == sorted(
        ["clip.token_embedding.weight", "clip.positional_embedding", "clip.ln_final.weight",
         "clip.ln_final.bias", "clip.text_projection", "clip.logit_scale", "clip.visual.proj"])
    for key, _, split in rows:  # our split table equals the original's (recorded by the harness)
        dim = official.split_dim(key.removeprefix("llma."))
        assert ("replicated" if dim is None else str(dim)) == split, key


def test_canonical_names_round_trip_through_the_key_map():
    model = sphinx_mllm.build("toy-1k")
    canonical = keymap.to_canonical(model.state_dict())
    assert "clip.visual.transformer.resblocks.0.attn.in_proj_weight" in canonical
    assert "dinov2_vitg14.blocks.1.mlp.w12.weight" in canonical
    plan = keymap.resolve(canonical, model.state_dict())
    rebuilt = {}
    for name, targets in plan.plan.items():
        parts = keymap.split(canonical[name], len(targets))
        rebuilt.update(zip(targets, parts))
    for key, value in model.state_dict().items():
        assert torch.equal(rebuilt[key], value), key


def test_cli_convert_and_info(tmp_path, released, capsys):
    from sphinx_mllm.cli import main

    path = released(bf16_model("toy"), tmp_path / "r", "llama_ens", shards=2)
    assert main(["convert", str(path), str(tmp_path / "ours"), "--preset", "toy"]) == 0
    assert ours.is_checkpoint_dir(tmp_path / "ours")
    assert main(["info", str(tmp_path / "ours"), "--json"]) == 0
    assert '"image_tokens": 27' in capsys.readouterr().out
    assert main(["info", str(path), "--json"]) == 0  # released dir: meta.json's variant
    assert '"image_tokens": 291' in capsys.readouterr().out
    with pytest.raises(SystemExit, match="not a released SPHINX checkpoint"):
        main(["convert", str(tmp_path), str(tmp_path / "x")])
