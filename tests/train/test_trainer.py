"""End-to-end training on the shipped tiny colour dataset: it learns, starts from a released
checkpoint, pre-trains on caption_lm / text_lm sources, and writes the run layout."""

import json

import pytest
import torch

import sphinx_mllm
from sphinx_mllm.data.mixture import load_mixture, read_mixture_config
from sphinx_mllm.train.config import load_config
from sphinx_mllm.train.plot import plot_runs
from sphinx_mllm.train.trainer import lm_loss, train
from trainhelp import COLOURS, REPO, losses


def test_a_toy_model_memorises_the_colour_of_every_image(tmp_path, tiny_config):
    final = train(tiny_config(tmp_path / "run"))
    pipe = sphinx_mllm.load(final)
    images = REPO / "configs" / "train" / "tiny" / "images"
    answers = {c: pipe.chat(images / f"{c}.png", "What colour is the image?",
                            max_new_tokens=6).text for c in COLOURS}
    assert answers == {c: c for c in COLOURS}
    curve = losses(tmp_path / "run")
    assert len(curve) == 80 and curve[-1] < curve[0] / 50
    record = json.loads((tmp_path / "run" / "metrics.jsonl").read_text().splitlines()[-1])
    assert {"step", "loss", "lr", "tokens_per_s"} <= set(record) and record["step"] == 80
    assert [p.name for p in sorted((tmp_path / "run" / "checkpoints").iterdir())] == \
        ["step-0000040", "step-0000080"]


def test_plot_draws_a_png(tmp_path, tiny_config):
    train(tiny_config(tmp_path / "run", "steps=3", "save_every=0"))
    out = plot_runs([tmp_path / "run"], tmp_path / "curves.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_fine_tuning_starts_from_a_released_checkpoint(tmp_path, tiny_config, released):
    torch.manual_seed(3)
    base = sphinx_mllm.build("toy")
    src = released(base, tmp_path / "released", "llama_ens", shards=2)
    cfg = tiny_config(tmp_path / "run", f"model={src}", "preset=toy", "steps=2", "save_every=0",
                      "optim.lr=1e-3")
    tuned = sphinx_mllm.checkpoint.load(train(cfg))
    assert tuned.cfg.name == "toy"
    # The encoders are frozen: copied through bit-exactly; the LLM moved.
    assert torch.equal(tuned.encoders.state_dict()["clip.model.embeddings.class_embedding"],
                       base.encoders.state_dict()["clip.model.embeddings.class_embedding"])
    assert not torch.equal(tuned.llm.output.weight, base.llm.output.weight)


def test_grid_trains_the_same_weights_under_other_views(tmp_path, tiny_config):
    one = train(tiny_config(tmp_path / "one", "steps=2", "save_every=0"))
    two = train(tiny_config(tmp_path / "two", f"model={one}", "grid=2", "steps=2", "save_every=0",
                            "optim.lr=1e-3"))
    before, after = sphinx_mllm.checkpoint.load(one), sphinx_mllm.checkpoint.load(two)
    assert (before.cfg.grid, after.cfg.grid) == (1, 2) and after.cfg.num_views == 5
    assert {n: p.shape for n, p in before.state_dict().items()} == \
        {n: p.shape for n, p in after.state_dict().items()}
    assert not torch.equal(before.llm.output.weight, after.llm.output.weight)
    assert after.cfg.image_tokens == 5 * before.cfg.image_tokens  # a global view and 4 crops
    with pytest.raises(ValueError, match="grid must be >= 1"):
        tiny_config(tmp_path / "x", "grid=0")


def test_pre_training_mixes_caption_lm_and_text_lm_sources(tmp_path, tiny_config):
    tiny = REPO / "configs" / "train" / "tiny"
    mixture = tmp_path / "pretrain.yaml"
    mixture.write_text(f"""META:
  - {{path: {tiny / 'captions.json'}, type: image_text, task: caption_lm}}
  - {{path: {tiny / 'text.jsonl'}, format: text, type: text, task: text_lm}}
""")
    loaded = load_mixture(read_mixture_config(mixture))
    assert [sk.total for sk in loaded.skips] == [0, 0]
    assert sorted(s.task for s in loaded.samples) == ["caption_lm"] * 8 + ["text_lm"] * 4
    train(tiny_config(tmp_path / "run", f"data={mixture}", "steps=12", "batch_size=2",
                      "trainable=[llm,projector,start_end]", "save_every=0"))
    curve = losses(tmp_path / "run")
    assert len(curve) == 12 and sum(curve[-3:]) < 0.75 * sum(curve[:3])


def test_loss_modes():
    logits = torch.zeros(2, 4, 5)
    logits[0, :, 1] = 10.0  # row 0 predicts token 1 everywhere
    labels = torch.tensor([[-100, 1, 1, 1], [-100, -100, -100, 3]])
    token = lm_loss(logits, labels, "token")
    sample = lm_loss(logits, labels, "sample")
    per_row = [float(torch.nn.functional.cross_entropy(logits[0, :3], labels[0, 1:])),
               float(torch.log(torch.tensor(5.0)))]  # row 1: uniform logits, one token
    assert sample.item() == pytest.approx(sum(per_row) / 2, rel=1e-5)
    assert token.item() == pytest.approx((3 * per_row[0] + per_row[1]) / 4, rel=1e-5)


def test_schedule_warms_up_then_reaches_min_lr_at_the_last_step():
    from sphinx_mllm.train.config import OptimConfig
    from sphinx_mllm.train.optim import lr_at

    cfg = OptimConfig(lr=1e-3, min_lr=1e-4, warmup_steps=3)
    lrs = [lr_at(step, 10, cfg) for step in range(10)]
    assert lrs[:3] == pytest.approx([1e-3 / 3, 2e-3 / 3, 1e-3])
    assert all(a > b for a, b in zip(lrs[2:], lrs[3:]))  # peak once, then strictly down
    assert lrs[-1] == pytest.approx(1e-4)


def test_example_configs_parse():
    for path in sorted((REPO / "configs" / "train").glob("*.yaml")):
        cfg = load_config(path)
        assert cfg.data.is_absolute() and cfg.out.is_absolute(), path
        assert read_mixture_config(cfg.data), cfg.data


def test_overrides_and_errors(tmp_path):
    cfg = load_config(REPO / "configs" / "train" / "tiny-cpu.yaml",
                      ["optim.lr=1e-4", "lora.rank=4", "trainable=[llm]", "out=x"])
    assert cfg.optim.lr == 1e-4 and cfg.lora.rank == 4 and cfg.trainable == ("llm",)
    assert cfg.out == (REPO / "configs" / "train" / "x").resolve()
    with pytest.raises(ValueError, match="optim.lrr"):
        load_config(REPO / "configs" / "train" / "tiny-cpu.yaml", ["optim.lrr=1"])
    with pytest.raises(ValueError, match="unknown trainable"):
        load_config(REPO / "configs" / "train" / "tiny-cpu.yaml", ["trainable=[vision]"])
    with pytest.raises(ValueError, match="key=value"):
        load_config(REPO / "configs" / "train" / "tiny-cpu.yaml", ["steps"])


def test_export_writes_any_saved_step_as_a_model(tmp_path, tiny_config, capsys):
    from sphinx_mllm.cli import main
    from sphinx_mllm.train.trainer import export_checkpoint

    run = tmp_path / "run"
    final = sphinx_mllm.checkpoint.load(train(tiny_config(run, "steps=4", "save_every=2")))
    last = sphinx_mllm.checkpoint.load(export_checkpoint(run)).state_dict()  # newest: step 4
    assert (run / "exported" / "step-0000004" / "config.json").is_file()
    for name, tensor in final.state_dict().items():
        assert torch.equal(last[name], tensor), name
    main(["export", str(run), "--step", "2", "--out", str(tmp_path / "two")])
    assert "wrote" in capsys.readouterr().out
    two = sphinx_mllm.checkpoint.load(tmp_path / "two")
    assert not torch.equal(two.llm.output.weight, final.llm.output.weight)  # trained 2 steps less
    assert torch.equal(two.encoders.state_dict()["clip.model.embeddings.class_embedding"],
                       final.encoders.state_dict()["clip.model.embeddings.class_embedding"])
    with pytest.raises(SystemExit, match=r"of step 3; saved steps: \[2, 4\]"):
        main(["export", str(run), "--step", "3"])


def test_two_exports_at_once_write_through_folders_of_their_own(tmp_path, tiny_config,
                                                                 monkeypatch):
    """An export of step 2 that runs while one of step 4 waits to publish must neither delete the
    files the other has written nor publish them as its own (both once shared one temporary
    folder, ``exported/final.tmp``)."""
    from sphinx_mllm.train import state
    from sphinx_mllm.train.trainer import export_checkpoint

    run = tmp_path / "run"
    final = sphinx_mllm.checkpoint.load(train(tiny_config(run, "steps=4", "save_every=2")))
    publish = state.publish

    def interleaved(tmp, target):
        if target.name == "step-0000004":
            export_checkpoint(run, step=2)
        publish(tmp, target)

    monkeypatch.setattr(state, "publish", interleaved)
    export_checkpoint(run, step=4)
    four = sphinx_mllm.checkpoint.load(run / "exported" / "step-0000004").state_dict()
    two = sphinx_mllm.checkpoint.load(run / "exported" / "step-0000002")
    for name, tensor in final.state_dict().items():
        assert torch.equal(four[name], tensor), name
    assert not torch.equal(two.llm.output.weight, final.llm.output.weight)
    assert sorted(p.name for p in (run / "exported").iterdir()) == ["step-0000002", "step-0000004"]
