"""``sphinx-mllm score`` on hand-written answers; every expected value is worked out by hand."""

import json
import math

import pytest

from sphinx_mllm.cli import main


def _score(capsys, tmp_path, name, data_dir, records, *extra):
    answers = tmp_path / f"{name}-answers.jsonl"
    answers.write_text("".join(json.dumps(r) + "\n" for r in records))
    assert main(["score", name, "--answers", str(answers), "--data", str(data_dir), "--json", *extra]) == 0
    out = capsys.readouterr().out.strip()
    assert out.count("\n") == 0  # exactly one JSON object
    return json.loads(out)


def test_vqa_accuracy_by_hand(benchmark_data, tmp_path, capsys):
    data_dir, _ = benchmark_data("vqav2")
    # 1001: "two" normalises to "2", which all ten humans said -> 1.0.
    # 1002: "Red." -> "red", said by 3 of 10: leave-one-out mean = (3 * 2/3 + 7 * 1) / 10 = 0.9.
    metrics = _score(capsys, tmp_path, "vqav2", data_dir, [
        {"question_id": 1001, "answer": "two"}, {"question_id": "1002", "answer": "Red."}])
    assert math.isclose(metrics["accuracy"], 95.0) and metrics["n"] == 2 and metrics["missing"] == 0


def test_pope_by_hand_with_an_unparsable_answer(benchmark_data, tmp_path, capsys):
    data_dir, _ = benchmark_data("pope")  # labels: yes, yes, yes, no
    metrics = _score(capsys, tmp_path, "pope", data_dir, [
        {"question_id": 1, "answer": "Yes, there is a dog."},  # TP
        {"question_id": 2, "answer": "yes"},                   # TP
        {"question_id": 3, "answer": "No, there is not."},     # FN
        {"question_id": 4, "answer": "Maybe"}])                # unparsable -> yes (official): FP
    assert (metrics["tp"], metrics["fn"], metrics["fp"], metrics["tn"]) == (2, 1, 1, 0)
    assert math.isclose(metrics["accuracy"], 50.0)
    assert math.isclose(metrics["precision"], 200 / 3) and math.isclose(metrics["recall"], 200 / 3)
    assert math.isclose(metrics["f1"], 200 / 3) and math.isclose(metrics["yes_ratio"], 75.0)
    assert metrics["unparsable"] == 1


def test_refcoco_acc50_by_hand_through_the_padded_square(benchmark_data, tmp_path, capsys):
    data_dir, _ = benchmark_data("refcoco")
    # 40x20 image -> 40x40 square, y offset 10. Reference [4, 2, 10, 8] = pixels (4, 2, 14, 10)
    # = square (0.10, 0.30, 0.35, 0.50).
    metrics = _score(capsys, tmp_path, "refcoco", data_dir, [
        {"ref_id": 1, "sent_id": 100, "answer": "[0.10,0.30,0.35,0.50]"},  # IoU 1
        # pixels (8, 2, 18, 10): intersection 6 x 8 = 48, union 80 + 80 - 48 = 112 -> IoU 0.43
        {"ref_id": 1, "sent_id": 101, "answer": "<p>dog</p> [0.20,0.30,0.45,0.50]"},
        {"ref_id": 1, "sent_id": 102, "answer": "[0.10,0.30]"}])  # no box: malformed
    assert math.isclose(metrics["acc50"], 100 / 3) and metrics["malformed"] == 1
    assert math.isclose(metrics["mean_iou"], 100 * (1 + 48 / 112) / 3)


def test_rec_without_the_padding_offset_misses(benchmark_data, tmp_path, capsys):
    # The same box read as if the image were not padded: (0.10, 0.10, 0.35, 0.50) of the 40 px
    # side is pixels (4, -6, 14, 10) -> IoU 80 / 160 = 0.5 exactly, a hit; shift it one more row
    # and it is a miss. This pins that answers are read in the padded square.
    data_dir, _ = benchmark_data("refcoco")
    metrics = _score(capsys, tmp_path, "refcoco", data_dir, [
        {"ref_id": 1, "sent_id": 100, "answer": "[0.10,0.10,0.35,0.50]"},
        {"ref_id": 1, "sent_id": 101, "answer": "[0.10,0.075,0.35,0.50]"}])
    assert math.isclose(metrics["acc50"], 50.0) and metrics["missing"] == 1


def test_mme_acc_plus_by_hand(benchmark_data, tmp_path, capsys):
    data_dir, _ = benchmark_data("mme")
    metrics = _score(capsys, tmp_path, "mme", data_dir, [
        {"question_id": "existence/000000006040.jpg/0", "answer": "Yes"},
        {"question_id": "existence/000000006040.jpg/1", "answer": " No, there is no bed."},
        {"question_id": "artwork/10002.jpg/0", "answer": "Yes"},
        {"question_id": "artwork/10002.jpg/1", "answer": "Yes"}])
    assert metrics["existence/acc"] == 100.0 and metrics["existence/acc_plus"] == 100.0
    assert metrics["artwork/acc"] == 50.0 and metrics["artwork/acc_plus"] == 0.0
    assert metrics["perception"] == 250.0 and metrics["cognition"] == 0.0


def test_scienceqa_and_chartqa_by_hand(benchmark_data, tmp_path, capsys):
    data_dir, _ = benchmark_data("scienceqa")
    metrics = _score(capsys, tmp_path, "scienceqa", data_dir, [{"question_id": "10", "answer": "B"}])
    assert metrics["accuracy"] == 100.0
    data_dir, _ = benchmark_data("chartqa")
    # "12.5" vs 12 is 4.2 % off (within 5 %); "2011" vs 2010 is 0.05 % off: both right.
    metrics = _score(capsys, tmp_path, "chartqa", data_dir, [
        {"question_id": 0, "answer": "12.5"}, {"question_id": 1, "answer": "2011"}])
    assert metrics["relaxed_accuracy"] == 100.0


@pytest.mark.parametrize("records,message", [
    ([{"question_id": 99, "answer": "x"}], "match no gqa item"),
    ([{"id": 1, "answer": "x"}], "lacks id field 'question_id'"),
])
def test_score_clear_errors(records, message, benchmark_data, tmp_path):
    data_dir, _ = benchmark_data("gqa")
    answers = tmp_path / "a.jsonl"
    answers.write_text("".join(json.dumps(r) + "\n" for r in records))
    with pytest.raises(SystemExit, match=message):
        main(["score", "gqa", "--answers", str(answers), "--data", str(data_dir)])
