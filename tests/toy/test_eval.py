"""toy eval: the scoring path gives 1.0 to perfect answers and 0 to wrong ones, and a random
model runs end to end through the CLI with the exact JSON keys."""

import json

import pytest

from sphinx_mllm import cli
from sphinx_mllm.toy.evaluate import (SUMMARY_KEYS, load_world_items, reference_answers,
                                      score_world)


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
    assert score_world(eval_world, answers, items)["summary"]["rec_acc50"] < 0.05


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


def test_toy_eval_refuses_training_seeds():
    with pytest.raises(SystemExit, match="training seed"):
        cli.main(["toy", "eval", "--model", "toy-world", "--seed", "3", "--n", "4", "--json"])
