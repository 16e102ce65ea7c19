"""Weight mixing: exact at beta 1 and 0, the mean at 0.5, clear errors for unrelated parents;
grafting one checkpoint's encoders onto another."""

import json

import pytest
import torch

import sphinx_mllm
from sphinx_mllm import cli
from sphinx_mllm.checkpoint import OursCheckpoint, ours
from sphinx_mllm.inference.pipeline import bundled_tokenizer_path
from sphinx_mllm.train.mix import MixError, content_hash, graft, mix


def parents(tmp_path, same_encoders=True, preset_b="toy"):
    torch.manual_seed(0)
    a = sphinx_mllm.build("toy")
    torch.manual_seed(1)
    b = sphinx_mllm.build(preset_b)
    if same_encoders and preset_b == "toy":
        b.encoders.load_state_dict(a.encoders.state_dict())
    return (ours.save(a, bundled_tokenizer_path(), tmp_path / "a"),
            ours.save(b, bundled_tokenizer_path(), tmp_path / "b"))


def tensors(path):
    ckpt = OursCheckpoint(path)
    return {n: ckpt.get(n) for n in ckpt.names}


def test_beta_one_and_zero_reproduce_the_parents_and_half_is_the_mean(tmp_path):
    a, b = parents(tmp_path)
    written = mix(a, b, tmp_path / "mix", [1.0, 0.0, 0.5])
    assert [p.name for p in written] == ["beta-1", "beta-0", "beta-0.5"]
    ta, tb = tensors(a), tensors(b)
    one, zero, half = (tensors(p) for p in written)
    llm = [n for n in ta if n.startswith(("layers.", "tok_embeddings", "norm.", "output."))]
    assert llm and all(torch.equal(one[n], ta[n]) and torch.equal(zero[n], tb[n]) for n in llm)
    assert all(torch.allclose(half[n], (ta[n] + tb[n]) / 2, atol=1e-7) for n in llm)
    other = [n for n in ta if n not in llm]  # projections, start/end, encoders: from A
    assert all(torch.equal(zero[n], ta[n]) for n in other)
    meta = json.loads((written[2] / ours.INDEX).read_text())["metadata"]
    assert meta["mix_beta"] == "0.5"
    assert meta["mix_parent_sha256"] == [content_hash(a), content_hash(b)]
    assert sphinx_mllm.load(written[2]).model.cfg.name == "toy"


def test_include_projector_mixes_the_projections(tmp_path):
    a, b = parents(tmp_path)
    half = tensors(mix(a, b, tmp_path / "mix", [0.5], include_projector=True)[0])
    ta, tb = tensors(a), tensors(b)
    assert torch.allclose(half["visual_proj.0.weight"], (ta["visual_proj.0.weight"] +
                                                         tb["visual_proj.0.weight"]) / 2)


def test_parents_with_different_encoders_are_refused(tmp_path):
    a, b = parents(tmp_path, same_encoders=False)
    with pytest.raises(MixError, match=r"frozen encoder tensor (clip|openclip|dinov2|qformer)"):
        mix(a, b, tmp_path / "mix", [0.5])
    assert not (tmp_path / "mix").exists()


def test_out_must_not_be_a_parent(tmp_path):
    a, b = parents(tmp_path)
    with pytest.raises(ValueError, match="overwrite the parent"):
        mix(a, b, a, [0.5])


def test_parents_with_different_configs_are_refused(tmp_path):
    a, b = parents(tmp_path, preset_b="toy-1k")
    with pytest.raises(MixError, match="image_size|grid|name"):
        mix(a, b, tmp_path / "mix", [0.5])


def test_graft_takes_the_encoders_and_keeps_everything_else(tmp_path):
    a, b = parents(tmp_path, same_encoders=False)
    out = graft(a, b, tmp_path / "grafted")
    ta, tb, tg = tensors(a), tensors(b), tensors(out)
    encoders = [n for n in ta if n.startswith(("clip.", "openclip_", "dinov2_", "qformer."))]
    assert encoders and all(torch.equal(tg[n], tb[n]) for n in encoders)
    assert any(not torch.equal(ta[n], tb[n]) for n in encoders)  # the graft changed something
    others = [n for n in ta if n not in encoders]
    assert "visual_proj.0.weight" in others and all(torch.equal(tg[n], ta[n]) for n in others)
    meta = json.loads((out / ours.INDEX).read_text())["metadata"]
    assert meta["graft_sha256"] == [content_hash(a), content_hash(b)]


def test_toy_graft_command_writes_the_same_checkpoint(tmp_path, capsys):
    a, b = parents(tmp_path, same_encoders=False)
    assert cli.main(["toy", "graft", "--model", str(a), "--encoders", str(b),
                     "--out", str(tmp_path / "cli")]) == 0
    assert f"wrote {tmp_path / 'cli'}" in capsys.readouterr().out
    library, written = tensors(graft(a, b, tmp_path / "library")), tensors(tmp_path / "cli")
    assert written.keys() == library.keys()
    assert all(torch.equal(t, library[n]) for n, t in written.items())


def test_graft_refuses_another_config_and_its_own_parents(tmp_path):
    a, b = parents(tmp_path, preset_b="toy-1k")
    with pytest.raises(MixError, match="image_size|grid|name"):
        graft(a, b, tmp_path / "grafted")
    with pytest.raises(ValueError, match="overwrite the parent"):
        graft(a, a, a)
