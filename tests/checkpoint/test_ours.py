import json

import pytest
import torch

import sphinx_mllm
from sphinx_mllm.checkpoint import ours
from sphinx_mllm.constants import IMAGE_PLACEHOLDER_ID as PH
from sphinx_mllm.inference.pipeline import bundled_tokenizer_path


@torch.no_grad()
def test_save_load_round_trip_is_bit_exact(tmp_path):
    torch.manual_seed(0)
    model = sphinx_mllm.build("toy-1k")
    ours.save(model, bundled_tokenizer_path(), tmp_path, max_shard_bytes=200_000)
    index = json.loads((tmp_path / ours.INDEX).read_text())["weight_map"]
    assert len(set(index.values())) > 1  # really sharded
    again = ours.load(tmp_path)
    for (k, a), (k2, b) in zip(model.state_dict().items(), again.state_dict().items()):
        assert k == k2 and torch.equal(a, b)
    ids = torch.tensor([[1] + [PH] * model.cfg.image_tokens + [5, 6]])
    img = torch.randn(1, 3, 112, 112)
    assert torch.equal(model(ids, img), again(ids, img))
    pipe = sphinx_mllm.load(tmp_path)
    assert pipe.model.cfg == model.cfg


@torch.no_grad()
def test_conv_stem_round_trips_under_its_own_canonical_names(tmp_path):
    """``stem: conv`` ViTs (toy-world's with ``vit_stem=conv``; no released weights have one): the
    keymap names their convolutions ``clip.visual.conv_stem.*`` /
    ``dinov2_vitg14.patch_embed.conv_stem.*``."""
    from sphinx_mllm.config import SphinxConfig, with_vit_stem

    torch.manual_seed(0)
    model = sphinx_mllm.build(with_vit_stem(SphinxConfig.from_name("toy-world"), "conv"))
    ours.save(model, bundled_tokenizer_path(), tmp_path)
    names = set(json.loads((tmp_path / ours.INDEX).read_text())["weight_map"])
    assert {"clip.visual.conv_stem.0.weight", "clip.visual.conv_stem.6.bias",
            "dinov2_vitg14.patch_embed.conv_stem.6.weight"} <= names
    again = ours.load(tmp_path)
    assert again.cfg.clip.stem == again.cfg.dinov2.stem == "conv"
    for (k, a), (k2, b) in zip(model.state_dict().items(), again.state_dict().items()):
        assert k == k2 and torch.equal(a, b)


def test_load_with_dtype_casts(tmp_path):
    ours.save(sphinx_mllm.build("toy"), bundled_tokenizer_path(), tmp_path)
    assert ours.load(tmp_path, dtype=torch.bfloat16).llm.output.weight.dtype == torch.bfloat16


def test_checkpoint_that_does_not_match_its_config_names_the_keys(tmp_path):
    ours.save(sphinx_mllm.build("toy"), bundled_tokenizer_path(), tmp_path)
    index = json.loads((tmp_path / ours.INDEX).read_text())
    index["weight_map"]["llm.extra.weight"] = next(iter(index["weight_map"].values()))
    (tmp_path / ours.INDEX).write_text(json.dumps(index))
    with pytest.raises(KeyError, match="llm.extra.weight"):
        ours.load(tmp_path)
