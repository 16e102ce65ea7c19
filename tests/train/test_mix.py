"""Weight mixing: exact at beta 1 and 0, the mean at 0.5, clear errors for unrelated parents;
the weighted average of several siblings; grafting one checkpoint's encoders onto another."""

import json

import pytest
import torch

import sphinx_mllm
from sphinx_mllm import cli
from sphinx_mllm.checkpoint import OursCheckpoint, ours
from sphinx_mllm.inference.pipeline import bundled_tokenizer_path
from sphinx_mllm.train.mix import MixError, average, content_hash, graft, mix


def parents(tmp_path, same_encoders=True, preset_b="toy"):
    torch.manual_seed(0)
    a = sphinx_mllm.build("toy")
    torch.manual_seed(1)
    b = sphinx_mllm.build(preset_b)
    if same_encoders and preset_b == "toy":
        b.encoders.load_state_dict(a.encoders.state_dict())
    return (ours.save(a, bundled_tokenizer_path(), tmp_path / "a"),
            ours.save(b, bundled_tokenizer_path(), tmp_path / "b"))


def third_sibling(tmp_path):
    """A third parent with the encoders of ``parents``' A and its own LLM and projections."""
    torch.manual_seed(0)
    encoders = sphinx_mllm.build("toy").encoders.state_dict()  # A's, rebuilt from its seed
    torch.manual_seed(2)
    c = sphinx_mllm.build("toy")
    c.encoders.load_state_dict(encoders)
    return ours.save(c, bundled_tokenizer_path(), tmp_path / "c")


def encoder_names(tensors):
    """The frozen vision towers' tensor names, by the prefixes of our checkpoint format."""
    return [n for n in tensors if n.startswith(("clip.", "openclip_", "dinov2_", "qformer."))]


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


def test_out_must_not_be_a_parent_nor_hold_one(tmp_path):
    a, b = parents(tmp_path)
    for out in (a, a / "inside", tmp_path):  # tmp_path holds both parents
        with pytest.raises(ValueError, match="overwrite the parent"):
            mix(a, b, out, [0.5, 1.0])
        with pytest.raises(ValueError, match="overwrite the parent"):
            average([a, b], out)
    assert (a / ours.INDEX).exists() and (b / ours.INDEX).exists()


def test_parents_with_different_configs_are_refused(tmp_path):
    a, b = parents(tmp_path, preset_b="toy-1k")
    with pytest.raises(MixError, match="image_size|grid|name"):
        mix(a, b, tmp_path / "mix", [0.5])


def test_average_of_three_is_their_weighted_mean(tmp_path):
    a, b = parents(tmp_path)
    c = third_sibling(tmp_path)
    out = average([a, b, c], tmp_path / "soup", weights=[2, 1, 1], include_projector=True)
    ta, tb, tc, soup = tensors(a), tensors(b), tensors(c), tensors(out)
    encoders = encoder_names(ta)
    mixed = [n for n in ta if n not in encoders]
    assert "visual_proj.0.weight" in mixed and "layers.0.attention.wq.weight" in mixed
    for name in mixed:
        expected = 0.5 * ta[name] + 0.25 * tb[name] + 0.25 * tc[name]
        assert torch.allclose(soup[name], expected, atol=1e-6), name
    assert encoders and all(torch.equal(soup[n], ta[n]) for n in encoders)
    meta = json.loads((out / ours.INDEX).read_text())["metadata"]
    assert meta["mix_weights"] == ["0.5", "0.25", "0.25"]
    assert meta["mix_parent_sha256"] == [content_hash(p) for p in (a, b, c)]
    equal = tensors(average([a, b, c], tmp_path / "equal"))  # LLM only, equal weights
    name = "layers.0.feed_forward.w1.weight"
    assert torch.allclose(equal[name], (ta[name] + tb[name] + tc[name]) / 3, atol=1e-6)
    assert torch.equal(equal["visual_proj.0.weight"], ta["visual_proj.0.weight"])


def test_average_of_two_is_the_mix_at_their_weight(tmp_path):
    a, b = parents(tmp_path)
    mixed = tensors(mix(a, b, tmp_path / "mix", [0.3])[0])
    averaged = tensors(average([a, b], tmp_path / "avg", weights=[0.3, 0.7]))
    assert all(torch.equal(t, mixed[n]) for n, t in averaged.items())
    exact = tensors(average([a, b], tmp_path / "exact", weights=[0, 5]))  # B's LLM exactly
    tb = tensors(b)
    assert torch.equal(exact["layers.1.attention.wo.weight"], tb["layers.1.attention.wo.weight"])


def test_average_refuses_bad_weights_and_a_foreign_parent(tmp_path):
    a, b = parents(tmp_path)
    with pytest.raises(ValueError, match="two or more parents"):
        average([a], tmp_path / "one")
    with pytest.raises(ValueError, match="3 weights for 2 parents"):
        average([a, b], tmp_path / "n", weights=[1, 1, 1])
    for bad in ([2, -1], [1, float("nan")], [1, float("inf")], [1e308, 1e308], [0, 0]):
        with pytest.raises(ValueError, match="finite and non-negative with a positive, finite"):
            average([a, b], tmp_path / "bad", weights=bad)
    torch.manual_seed(3)
    foreign = ours.save(sphinx_mllm.build("toy"), bundled_tokenizer_path(), tmp_path / "f")
    with pytest.raises(MixError, match=f"frozen encoder tensor .* \\({foreign}\\)"):
        average([a, b, foreign], tmp_path / "soup")
    assert not (tmp_path / "soup").exists()


def test_mix_command_averages_several_parents_and_checks_its_flags(tmp_path, capsys):
    a, b = parents(tmp_path)
    c = third_sibling(tmp_path)
    assert cli.main(["mix", str(a), str(b), str(c), "--weights", "1,1,2",
                     "--out", str(tmp_path / "cli")]) == 0
    assert f"wrote {tmp_path / 'cli'}" in capsys.readouterr().out
    library = tensors(average([a, b, c], tmp_path / "lib", weights=[1, 1, 2]))
    assert all(torch.equal(t, library[n]) for n, t in tensors(tmp_path / "cli").items())
    with pytest.raises(SystemExit, match="--beta mixes two parents; 3 given"):
        cli.main(["mix", str(a), str(b), str(c), "--beta", "0.5", "--out", str(tmp_path / "x")])
    with pytest.raises(SystemExit, match="--weights takes comma-separated numbers"):
        cli.main(["mix", str(a), str(b), "--weights", "1,x", "--out", str(tmp_path / "x")])
    with pytest.raises(SystemExit):  # argparse: --beta and --weights exclude each other
        cli.main(["mix", str(a), str(b), "--beta", "0.5", "--weights", "1,1",
                  "--out", str(tmp_path / "x")])
    assert "not allowed with argument" in capsys.readouterr().err


def test_graft_takes_the_encoders_and_keeps_everything_else(tmp_path):
    a, b = parents(tmp_path, same_encoders=False)
    out = graft(a, b, tmp_path / "grafted")
    ta, tb, tg = tensors(a), tensors(b), tensors(out)
    encoders = encoder_names(ta)
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
