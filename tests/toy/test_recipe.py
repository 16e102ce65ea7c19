"""`toy train --quick`: the whole recipe end to end on a tiny world, every stage with the real
tools, then a rerun that skips every completed stage.

The quick recipe is too short to teach the answer formats (measured: 100 curriculum steps of 4
still answer REC with ``[0.30.30.30...``); the formats are checked on the bundled model
(test_bundled.py)."""

import dataclasses
import json
from pathlib import Path

import pytest
import yaml

from sphinx_mllm import cli
from sphinx_mllm.toy.recipe import (CONFIGS, QUICK, Budget, Run, _mix, finetune_mixtures, read_tail,
                                    stages)


def _losses(path):
    return [json.loads(line)["loss"] for line in path.read_text().splitlines()]


def test_quick_recipe_end_to_end(tmp_path, capsys):
    out = tmp_path / "run"
    # num_workers: data drawn by a worker process per stage, as a GPU run does (scripts/toy_gpu.sh)
    assert cli.main(["toy", "train", "--quick", "--out", str(out), "--set", "train_seed=3",
                     "--set", "num_workers=1"]) == 0
    names = [s.name for s in stages(QUICK)]
    records = [json.loads(x) for x in (out / "recipe.jsonl").read_text().splitlines()]
    assert [r["stage"] for r in records] == names
    for name in names:
        assert (out / "logs" / f"{name}.log").exists(), name

    for world in ("world", "world-1obj", "world-2shapes", "world-crowded", "val-world",
                  "val-world-beta"):
        assert (out / world / "world.json").exists()
    manifest = json.loads((out / "val-world" / "world.json").read_text())
    assert manifest["held_out"] and manifest["split"] == "val"
    assert (out / "tokenizer.model").stat().st_size > 0
    probe = json.loads((out / "encoders" / "probe.json").read_text())
    assert set(probe) == {"clip", "convnext", "dinov2", "qformer"}
    assert (out / "encoders" / "heads.safetensors").stat().st_size > 0

    # the question stage: its own data, then the pretrain starts from it
    assert json.loads((out / "recipe.jsonl").read_text().splitlines()[
        names.index("questions-data")])["questions"]["world"] > 0
    assert yaml.safe_load((out / "pretrain" / "config.yaml").read_text())["model"].endswith(
        "questions/final")
    for stage, steps in (("questions", QUICK.question_steps),
                         ("pretrain", QUICK.pretrain_steps), ("synthetic", QUICK.synthetic_steps),
                         ("curriculum", QUICK.curriculum_steps),
                         ("rec-two-shapes", QUICK.rec_view_steps),
                         ("finetune", QUICK.finetune_steps)):
        assert (out / stage / "final" / "config.json").exists(), stage
        assert len(_losses(out / stage / "metrics.jsonl")) == steps, stage
        config = (out / stage / "config.yaml").read_text()
        assert "\nseed: 3\n" in config and "\nnum_workers: 1\n" in config, stage
    # the tail (configs/toy/tail-pose.yaml at 0.001 of its steps): each stage from the one
    # before, its own seed, rate and weights, validated; the last one is the recipe's model
    tail = read_tail(QUICK.tail, finetune_mixtures(QUICK))
    assert [t.name for t in tail] == names[-len(tail):] == ["tail-i", "tail-j", "tail-p", "tail-q",
                                                           "tail-r"]
    for i, t in enumerate(tail):
        config = yaml.safe_load((out / t.name / "config.yaml").read_text())
        assert config["seed"] == 3 + i + 1 and config["optim"]["lr"] == t.lr, t.name
        assert config["model"].endswith(f"{names[-len(tail) + i - 1]}/final"), t.name
        steps = max(1, round(t.steps * QUICK.tail_scale))
        assert len(_losses(out / t.name / "metrics.jsonl")) == steps, t.name
        assert (out / "val" / f"{t.name}.json").exists()
    weights = [(s.get("format"), Path(s["path"]).parent.name, s.get("weight", 1.0)) for s in
               yaml.safe_load((out / "data" / "tail-p.yaml").read_text())["META"]]
    assert ("coco-keypoints", "run", 24.0) in weights and ("publaynet", "run", 16.0) in weights
    assert ("vqav2", "run", 5.0) in weights  # not named in the tail: as in data-all.yaml
    assert ("refcoco", "world", 0.5) in weights and ("refcoco", "world-2shapes", 0.4) in weights
    assert json.loads((out / "tail-r" / "final" / "config.json").read_text())["grid"] == 2
    assert (out / "tail.yaml").read_text() == (CONFIGS / QUICK.tail).read_text()
    assert f"wrote {out / 'tail-r' / 'final'}\n" in capsys.readouterr().out
    choice = json.loads((out / "mixed" / "choice.json").read_text())
    assert set(choice["scores"]) == {f"{b:g}" for b in QUICK.betas}
    assert (out / "mixed" / f"beta-{choice['beta']}" / "config.json").exists()
    # the one-view REC stage trains on the global view alone, the finetune on five views again,
    # with the two-shape source beside every task of the world
    grids = {stage: json.loads((out / stage / "final" / "config.json").read_text())["grid"]
             for stage in ("curriculum", "rec-two-shapes", "finetune")}
    assert grids == {"curriculum": 2, "rec-two-shapes": 1, "finetune": 2}
    finetune_data = (out / "finetune" / "config.yaml").read_text()
    assert "data-all.yaml+data-two-shapes.yaml" in finetune_data
    sources = (out / "data" / "data-all.yaml+data-two-shapes.yaml").read_text()
    assert sources.count("world-2shapes") == 2 and sources.count("format: vqav2") == 1
    # the curriculum stage is long enough to show learning: loss falls
    curriculum = _losses(out / "curriculum" / "metrics.jsonl")
    assert sum(curriculum[-4:]) < 0.75 * sum(curriculum[:4]), curriculum  # measured: 0.59
    val = json.loads((out / "val" / "finetune.json").read_text())
    assert all(value is None or value >= 0 for value in val.values())
    assert (out / "curves.png").stat().st_size > 0

    # a rerun finds every stage complete and runs none
    capsys.readouterr()
    assert cli.main(["toy", "train", "--quick", "--out", str(out), "--set", "train_seed=3"]) == 0
    assert "stage " not in capsys.readouterr().out
    assert len((out / "recipe.jsonl").read_text().splitlines()) == len(names)

    # one beta (``--set "betas=[0.5]"``) is mixed, scored and chosen like several
    one = Run(tmp_path / "one-beta", dataclasses.replace(QUICK, betas=(0.5,)))
    for part in ("pretrain", "synthetic", "val-world-beta", "tokenizer.model"):
        one.path(part).parent.mkdir(parents=True, exist_ok=True)
        one.path(part).symlink_to(out / part)
    choice = _mix(one)
    assert choice["beta"] == "0.5" and set(choice["scores"]) == {"0.5"}
    assert (one.path("mixed", "beta-0.5", "config.json")).exists()


def test_the_one_view_rec_stage_is_left_out_by_default():
    names = [s.name for s in stages(Budget())]
    assert "rec-two-shapes" not in names and "world-2shapes" not in names
    assert names[-2:] == ["curriculum", "finetune"]
    on = Budget().with_overrides(["rec_view_steps=6000"])
    assert [s.name for s in stages(on)][-4:] == ["curriculum", "world-2shapes", "rec-two-shapes",
                                                 "finetune"]
    assert on.scaled(41).rec_view_steps == 3000 and Budget().scaled(41).rec_view_steps == 0
    assert on.scaled(0.001).rec_view_steps == 1  # scaled down, never switched off
    assert Budget().scaled(41).tail_scale == 0.5  # and the tail's steps with them


@pytest.mark.parametrize("rec_view_steps", [0, 6000])
def test_the_finetune_starts_where_the_stage_list_says(tmp_path, monkeypatch, rec_view_steps):
    from sphinx_mllm.toy import recipe

    calls = []
    monkeypatch.setattr(recipe, "train_stage", lambda run, *args: calls.append(args) or tmp_path)
    monkeypatch.setattr(recipe, "validate", lambda *args, **kwargs: {})
    budget = Budget(rec_view_steps=rec_view_steps)
    stages(budget)[-1].run(Run(tmp_path, budget))
    config, model, data, steps, name, batch, extra, weights = calls[0]
    assert (config, name, steps, weights) == ("finetune.yaml", "finetune", budget.finetune_steps,
                                              None)
    if rec_view_steps:
        assert model == tmp_path / "rec-two-shapes" / "final" and extra == ("grid=2",)
        assert data == ("data-all.yaml", "data-two-shapes.yaml")
    else:
        assert model == tmp_path / "curriculum" / "final" and extra == ()
        assert data == ("data-all.yaml",)


def test_a_tail_stage_continues_the_one_before_it(tmp_path, monkeypatch):
    from sphinx_mllm.toy import recipe

    calls = []
    monkeypatch.setattr(recipe, "train_stage", lambda run, *args: calls.append(args) or tmp_path)
    monkeypatch.setattr(recipe, "validate", lambda *args, **kwargs: {})
    budget = Budget(rec_view_steps=6000, tail="tail-pose.yaml", tail_scale=0.5, train_seed=7)
    stages(budget)[-1].run(Run(tmp_path, budget))
    config, model, data, steps, name, batch, extra, weights = calls[0]
    assert (config, name, steps, batch) == ("finetune.yaml", "tail-r", 750, 16)
    assert model == tmp_path / "tail-q" / "final"
    assert data == ("data-all.yaml", "data-two-shapes.yaml")
    assert extra == ("seed=12", "optim.lr=0.0001", "optim.min_lr=1e-05", "optim.warmup_steps=30")
    assert weights["data-all.yaml"]["coco-keypoints"] == 36.0


def test_the_stage_cannot_be_switched_once_the_finetune_started(tmp_path):
    from sphinx_mllm.toy.recipe import run_recipe

    (tmp_path / "finetune").mkdir()
    (tmp_path / "budget.json").write_text(json.dumps({"rec_view_steps": 0}))
    with pytest.raises(ValueError, match="one-view REC stage off"):
        run_recipe(tmp_path, Budget(rec_view_steps=10))


def test_the_encoder_stage_cannot_be_remade_differently(tmp_path):
    """A folder whose encoder stage is written refuses a budget that would have made it
    otherwise (its shape emphasis or ViT stem): every later stage starts from that checkpoint."""
    from sphinx_mllm.toy.recipe import run_recipe

    (tmp_path / "encoders" / "final").mkdir(parents=True)
    (tmp_path / "budget.json").write_text(json.dumps({"vit_stem": "patch"}))
    with pytest.raises(ValueError, match="'shape_scale': 1.0"):
        run_recipe(tmp_path, Budget(shape_scale=3.0))
    with pytest.raises(ValueError, match="'vit_stem': 'patch'"):
        run_recipe(tmp_path, Budget(vit_stem="conv"))
    assert json.loads((tmp_path / "budget.json").read_text()) == {"vit_stem": "patch"}


def test_a_relative_run_folder_reaches_the_stages_whole(tmp_path, monkeypatch):
    """``toy train --out runs/toy``: the stages get the folder as an absolute path, since the
    training configs resolve the paths they are given from their own folder (configs/toy)."""
    from sphinx_mllm.toy import recipe

    seen = []
    monkeypatch.setattr(recipe, "stages", lambda budget, configs: [
        recipe.Stage("look", lambda run: False, lambda run: seen.append(run.path("encoders")))])
    monkeypatch.chdir(tmp_path)
    recipe.run_recipe("runs/toy", Budget())
    assert seen == [tmp_path / "runs" / "toy" / "encoders"]
    assert (tmp_path / "runs" / "toy" / "budget.json").exists()


def test_a_tail_stage_is_refused_before_anything_runs(tmp_path):
    for name in ("data-all.yaml", "data-two-shapes.yaml"):
        (tmp_path / name).write_text((CONFIGS / name).read_text())
    both = ("data-all.yaml", "data-two-shapes.yaml")

    def tail(**stage):
        (tmp_path / "t.yaml").write_text(yaml.safe_dump({"stages": [
            {"name": "tail-a", "steps": 10, "lr": 1e-4, "min_lr": 1e-5, **stage}]}))
        return read_tail("t.yaml", both, tmp_path)

    assert tail(weights={"data-all.yaml": {"coco-keypoints": 36}})[0].steps == 10
    with pytest.raises(ValueError, match="2 sources have format 'coco-captions'"):
        tail(weights={"data-all.yaml": {"coco-captions": 2}})
    with pytest.raises(ValueError, match="0 sources have format 'pose'"):
        tail(weights={"data-all.yaml": {"pose": 2}})
    with pytest.raises(ValueError, match="which the finetune does not use"):
        tail(weights={"data-web.yaml": {"coco-captions": 2}})
    with pytest.raises(ValueError, match="must start with 'tail-'"):
        tail(name="polish")
    with pytest.raises(ValueError, match=r"unknown keys \['learning_rate'\], missing keys \[\]"):
        tail(learning_rate=1e-4)
    for bad in ({"steps": 0}, {"min_lr": 1e-3}, {"lr": -1.0},
                {"weights": {"data-all.yaml": {"vqav2": -1}}}):
        with pytest.raises(ValueError, match="needs steps >= 1, 0 <= min_lr <= lr"):
            tail(**bad)
    with pytest.raises(ValueError, match="could not convert string to float: 'lots'"):
        tail(weights={"data-all.yaml": {"vqav2": "lots"}})
    with pytest.raises(ValueError, match="name a file in"):
        read_tail("configs/toy/tail-pose.yaml", both)


def test_a_bad_tail_stops_the_recipe_before_any_stage(tmp_path):
    from sphinx_mllm.toy.recipe import run_recipe

    # the shipped tail names the two-shape source, so it needs the one-view stage
    with pytest.raises(ValueError, match="data-two-shapes.yaml joins it with --set rec_view"):
        run_recipe(tmp_path / "run", Budget(tail="tail-pose.yaml"))
    assert not (tmp_path / "run").exists()


def test_the_tail_cannot_be_changed_once_it_started(tmp_path):
    from sphinx_mllm.toy.recipe import run_recipe

    configs = tmp_path / "configs"
    configs.mkdir()
    for name in ("data-all.yaml", "data-two-shapes.yaml", "tail-pose.yaml"):
        (configs / name).write_text((CONFIGS / name).read_text())
    run = tmp_path / "run"
    (run / "tail-i").mkdir(parents=True)
    (run / "tail.yaml").write_text((CONFIGS / "tail-pose.yaml").read_text())
    (run / "budget.json").write_text(json.dumps({"rec_view_steps": 6000, "tail": "tail-pose.yaml",
                                                 "tail_scale": 1.0}))
    started = Budget(rec_view_steps=6000, tail="tail-pose.yaml")
    for changed in (dataclasses.replace(started, tail=""),
                    dataclasses.replace(started, tail_scale=0.5)):
        with pytest.raises(ValueError, match="tail stages started with tail='tail-pose.yaml'"):
            run_recipe(run, changed, configs)
    (configs / "tail-pose.yaml").write_text(
        (CONFIGS / "tail-pose.yaml").read_text().replace("steps: 3000", "steps: 2000"))
    with pytest.raises(ValueError, match="the file as in"):  # edited in place
        run_recipe(run, started, configs)


def test_plotted_loss_is_a_trailing_running_mean():
    from sphinx_mllm.toy.recipe import _running_mean

    assert _running_mean([4.0, 2.0, 0.0, 6.0], 2) == [4.0, 3.0, 1.0, 3.0]
    assert _running_mean([1.0, 3.0], 5) == [1.0, 2.0]


def test_budget_vit_stem_is_checked_before_any_stage_runs(tmp_path):
    assert Budget().vit_stem == "patch"  # what trained the bundled model
    assert Budget().with_overrides(["vit_stem=conv"]).vit_stem == "conv"
    with pytest.raises(ValueError, match="vit_stem 'hybrid'"):
        Budget().with_overrides(["vit_stem=hybrid"])
    with pytest.raises(SystemExit, match="vit_stem 'hybrid'"):
        cli.main(["toy", "train", "--out", str(tmp_path / "run"), "--set", "vit_stem=hybrid"])
    assert not (tmp_path / "run" / "world").exists()
    for bad in ("shape_scale=abc", "shape_scale=0", "shape_scale=true"):
        with pytest.raises(ValueError, match="shape_scale .*: expected a number above 0"):
            Budget().with_overrides([bad])
    assert Budget().with_overrides(["shape_scale=3"]).shape_scale == 3
    for bad in ("question_steps=abc", "question_steps=-3", "question_steps=true",
                "finetune_steps=2.5"):
        with pytest.raises(ValueError, match="_steps .*: expected a whole number >= 0"):
            Budget().with_overrides([bad])
    with pytest.raises(ValueError, match="encoders_from 123: expected a checkpoint folder"):
        Budget().with_overrides(["encoders_from=123"])
    assert Budget().with_overrides(["question_steps=600"]).question_steps == 600


def test_encoders_from_is_checked_before_any_stage_runs(tmp_path):
    """A missing ``encoders_from`` fails at the start, not after the world is generated; a
    folder's encoder stage cannot be remade from other encoders."""
    from sphinx_mllm.toy.recipe import run_recipe

    with pytest.raises(FileNotFoundError, match="encoders_from 'nowhere'"):
        run_recipe(tmp_path / "run", Budget(encoders_from="nowhere"))
    assert not (tmp_path / "run").exists()
    (tmp_path / "encoders" / "final").mkdir(parents=True)
    (tmp_path / "budget.json").write_text(json.dumps({"encoders_from": str(tmp_path)}))
    with pytest.raises(ValueError, match="'encoders_from': "):
        run_recipe(tmp_path, Budget())


def test_question_subset_keeps_colour_questions_about_several_shapes(train_world, tmp_path):
    """The question stage's data: only "What color is the <shape>?" about scenes of two or more
    shapes, every field as the world wrote it, readable by the VQAv2 adapter from the world's
    images."""
    from sphinx_mllm.data.adapters.vqa import read_vqav2
    from sphinx_mllm.data.sample import Skips
    from sphinx_mllm.toy.evaluate import question_families, scene_shapes
    from sphinx_mllm.toy.recipe import write_question_subset

    kept = write_question_subset(train_world, tmp_path / "sub")
    questions = json.loads((train_world / "v2_OpenEnded_mscoco_train_questions.json").read_text())
    families, scenes = question_families(train_world), scene_shapes(train_world)
    expected = [q for q in questions["questions"]
                if families[str(q["question_id"])] == "colour"
                and len(scenes.get(f"COCO_train_{q['image_id']:012d}.jpg", ())) >= 2]
    sub = json.loads((tmp_path / "sub" / "v2_OpenEnded_mscoco_train_questions.json").read_text())
    assert 0 < kept == len(expected) < len(questions["questions"])
    assert sub["questions"] == expected
    assert all(q["question"].startswith("What color is the ") for q in sub["questions"])
    skips = Skips()
    samples = list(read_vqav2(tmp_path / "sub", "train", train_world / "train", 0, skips))
    assert len(samples) == kept and skips.total == 0
    assert all(Path(s.image).exists() for s in samples)


def test_the_question_stage_comes_before_the_pretrain_and_cannot_be_switched(tmp_path):
    from sphinx_mllm.toy.recipe import run_recipe

    names = [s.name for s in stages(Budget(question_steps=600))]
    assert names[names.index("encoders") + 1:names.index("pretrain")] == [
        "world-crowded", "questions-data", "questions"]
    assert "questions" not in [s.name for s in stages(Budget())]
    assert Budget(question_steps=600).scaled(41).question_steps == 300
    assert Budget().scaled(41).question_steps == 0
    (tmp_path / "pretrain").mkdir()
    (tmp_path / "budget.json").write_text(json.dumps({"question_steps": 0}))
    with pytest.raises(ValueError, match="question stage off"):
        run_recipe(tmp_path, Budget(question_steps=600))
