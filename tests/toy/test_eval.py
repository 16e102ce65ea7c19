"""toy eval: the scoring path gives 1.0 to perfect answers and 0 to wrong ones, and a random
model runs end to end through the CLI with the exact JSON keys."""

import json
import re

import pytest

from sphinx_mllm import cli
from sphinx_mllm.tasks import format_box
from sphinx_mllm.toy.evaluate import (SUMMARY_KEYS, load_world_items, reference_answers,
                                      score_world, shapes_per_scene)


def test_perfect_answers_score_one(eval_world):
    items = load_world_items(eval_world)
    assert all(items[task] for task in ("vqa", "rec", "detection", "layout", "pose"))
    result = score_world(eval_world, reference_answers(items), items)
    summary = result["summary"]
    assert set(summary) == set(SUMMARY_KEYS)
    for key in SUMMARY_KEYS:
        if not key.startswith("caption"):
            assert summary[key] == pytest.approx(1.0), key
    assert set(result["vqa_families"]) == {"colour", "shape", "count", "highres"}
    assert all(v == pytest.approx(1.0) for v in result["vqa_families"].values())
    assert set(result["rec_by_objects"]) <= {1, 2, 3, 4, 5} and len(result["rec_by_objects"]) > 1
    assert all(r["named"] == pytest.approx(1.0) for r in result["rec_by_objects"].values())
    assert sum(r["n"] for r in result["rec_by_objects"].values()) == len(items["rec"])
    # one synthetic reference per picture, answered verbatim: CIDEr-D's maximum (10)
    assert summary["caption_cider_synthetic"] == pytest.approx(10.0)
    assert summary["caption_cider_web"] > 1.0


def test_wrong_answers_score_zero(eval_world):
    items = load_world_items(eval_world)
    # not "None": VQA normalisation reads it as "0", a right answer to some count questions
    wrong = {task: [{**r, "answer": "zebra"} for r in records]
             for task, records in reference_answers(items).items()}
    summary = score_world(eval_world, wrong, items)["summary"]
    assert all(value == 0.0 for value in summary.values()), summary


def test_shifted_boxes_fail_rec(eval_world):
    """A box moved by its own width has IoU 0: REC accuracy must drop to 0, not stay at 1."""
    items = load_world_items(eval_world)
    answers = reference_answers(items)
    shifted = []
    for item, record in zip(items["rec"], answers["rec"]):
        b = item.frame.box_to_square(item.reference)
        w = b.x2 - b.x1
        shifted.append({**record, "answer": f"[{b.x1 + w:.2f},{b.y1:.2f},{b.x2 + w:.2f},{b.y2:.2f}]"})
    answers["rec"] = shifted
    result = score_world(eval_world, answers, items)
    assert result["summary"]["rec_acc50"] < 0.05
    assert all(r["named"] < 0.05 for r in result["rec_by_objects"].values())


def test_rec_by_objects_groups_by_the_shapes_in_the_scene(eval_world):
    """One-shape scenes answered right, the others with another shape's box: named 1 and other
    0 for one shape, named 0 and other 1 for more; group sizes are the scenes' own counts."""
    items = load_world_items(eval_world)
    shapes = shapes_per_scene(eval_world)
    answers = reference_answers(items)
    for k, item in enumerate(items["rec"]):
        scene = shapes[item.image.name]
        if len(scene) > 1:
            named = max(scene, key=lambda b: b.iou(item.reference))
            other = max((b for b in scene if b is not named), key=lambda b: -b.iou(named))
            answers["rec"][k] = {**answers["rec"][k],
                                 "answer": format_box(item.frame.box_to_square(other))}
    by_objects = score_world(eval_world, answers, items)["rec_by_objects"]
    assert by_objects[1] == {"n": by_objects[1]["n"], "named": 1.0, "other": 0.0}
    assert len(by_objects) > 1
    for count, rec in by_objects.items():
        if count > 1:
            assert rec["named"] < 0.1 and rec["other"] > 0.9, (count, rec)
    assert set(by_objects) == {len(shapes[item.image.name]) for item in items["rec"]}


def test_toy_eval_cli_on_a_random_model(tmp_path, capsys):
    code = cli.main(["toy", "eval", "--model", "toy-world", "--seed", "1001", "--n", "10",
                     "--json", "--max-new-tokens", "3", "--out", str(tmp_path)])
    assert code == 0
    out = capsys.readouterr().out.strip().splitlines()
    summary = json.loads(out[-1])
    assert list(summary) == list(SUMMARY_KEYS)
    for key, value in summary.items():
        assert value is None or value >= 0.0
        if value is not None and not key.startswith("caption"):
            assert value <= 1.0
    assert (tmp_path / "world" / "world.json").is_file()
    assert (tmp_path / "answers" / "vqa.answers.jsonl").is_file()


def test_toy_eval_cli_scores_only_the_tasks_asked(tmp_path, capsys):
    code = cli.main(["toy", "eval", "--model", "toy-world", "--seed", "1001", "--n", "8",
                     "--tasks", "rec", "--max-new-tokens", "3", "--out", str(tmp_path)])
    assert code == 0
    assert re.search(r"^  rec \d shapes? +\d\.\d{3}  \(another shape boxed: \d\.\d{3}, n = \d+\)$",
                     capsys.readouterr().out, re.M)
    assert [p.name for p in (tmp_path / "answers").glob("*.answers.jsonl")] == ["rec.answers.jsonl"]
    scores = json.loads((tmp_path / "answers" / "scores.json").read_text())
    assert scores["summary"]["rec_acc50"] is not None and scores["summary"]["vqa_acc"] is None
    with pytest.raises(SystemExit, match="unknown vqq"):
        cli.main(["toy", "eval", "--model", "toy-world", "--seed", "1001", "--tasks", "rec,vqq"])


def test_toy_eval_refuses_training_seeds():
    with pytest.raises(SystemExit, match="training seed"):
        cli.main(["toy", "eval", "--model", "toy-world", "--seed", "3", "--n", "4", "--json"])
