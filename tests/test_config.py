import pytest

from sphinx_mllm.config import PRESET_NAMES, LLMConfig, SphinxConfig

REAL_TOKENS = {"sphinx": 291, "sphinx-1k": 1455, "sphinx-v2-1k": 1455, "sphinx-2k": 2910,
               "sphinx-tiny": 259, "sphinx-tiny-1k": 1295}


@pytest.mark.parametrize("name,tokens", REAL_TOKENS.items())
def test_visual_token_accounting(name, tokens):
    assert SphinxConfig.from_name(name).image_tokens == tokens


def test_real_preset_geometry():
    one_k = SphinxConfig.from_name("sphinx-1k")
    assert (one_k.image_size, one_k.num_views, one_k.tokens_per_view) == (448, 5, 291)
    assert one_k.fused_kinds == ("clip", "convnext", "dinov2")
    assert one_k.fused_width == 1024 + 3072 + 1536
    assert one_k.convnext.upsample == 2  # 256 px / 32 = 8x8, repeated to 16x16
    tiny = SphinxConfig.from_name("sphinx-tiny-1k")
    assert tiny.fused_width == 3072 + 1536 and tiny.qformer is None and tiny.clip is None
    assert tiny.convnext.upsample == 1
    assert (tiny.llm.n_kv_heads, tiny.llm.hidden_dim) == (4, 5632)


def test_llama13b_ffn_width_is_derived():
    assert LLMConfig().hidden_dim == 13824
    assert LLMConfig(dim=4096, n_layers=32, n_heads=32).hidden_dim == 11008


# toy-world mirrors SPHINX-1k but keeps a native 4x4 ConvNeXt map: at 64-px views a repeated 2x2
# map would give groups of identical tokens (docs/toy-world.md).
TOY_FAMILY = {"toy-world": "sphinx-1k"}


@pytest.mark.parametrize("name", [n for n in PRESET_NAMES if n.startswith("toy")])
def test_toy_presets_keep_the_structure_of_their_family(name):
    cfg = SphinxConfig.from_name(name)
    real = SphinxConfig.from_name(TOY_FAMILY.get(name, "sphinx" + name[3:]))
    assert cfg.encoder_kinds == real.encoder_kinds
    assert cfg.num_views == real.num_views
    if name not in TOY_FAMILY:
        assert (cfg.convnext.upsample > 1) == (real.convnext.upsample > 1)


def test_file_round_trip(tmp_path):
    cfg = SphinxConfig.from_name("sphinx-tiny-1k")
    cfg.to_file(tmp_path / "config.json")
    again = SphinxConfig.from_file(tmp_path / "config.json")
    assert again == cfg and again.image_tokens == 1295


def test_unknown_preset_lists_known_ones():
    with pytest.raises(KeyError, match="sphinx-1k"):
        SphinxConfig.from_name("sphinx-3k")


def test_inconsistent_token_grids_are_rejected():
    cfg = SphinxConfig.from_name("toy").to_dict()
    cfg["dinov2"]["view_size"] = 70  # 5x5 grid vs the others' 4x4
    with pytest.raises(ValueError, match="token grid"):
        SphinxConfig.from_dict(cfg)
