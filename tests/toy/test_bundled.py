"""The bundled toy-world model: the default of `load()`, `chat` and `toy eval`, scored on a small
held-out world with bounds set just under what it measured there (docs/toy-world.md has the
n = 300 numbers; the issue's targets are not reached), and answering REC in the box format, in
the picture's own pixels. Pose is not checked for format: this model answers the pose prompt
with a phrase, not keypoints (docs/toy-world.md)."""

import json

import pytest

import sphinx_mllm
from sphinx_mllm import cli
from sphinx_mllm.inference.pipeline import bundled_model_path
from sphinx_mllm.tasks import parse_boxes
from sphinx_mllm.toy.evaluate import SUMMARY_KEYS

SEED, N = 1003, 24
# Measured on (SEED, N) with the bundled model (bf16 weights, CPU, greedy): vqa_acc 0.178,
# highres_acc 0.353, caption_cider_synthetic 1.352 (rec_acc50 0.027, det / layout / pose 0.0:
# no bound, as a bound of 0 could not fail). A random-weight model scores 0 on all three.
LOWER_BOUNDS = {"vqa_acc": 0.15, "highres_acc": 0.30, "caption_cider_synthetic": 1.2}


def test_bundled_model_is_small_and_packaged():
    files = list(bundled_model_path().iterdir())
    assert {f.name for f in files} >= {"config.json", "model.safetensors.index.json", "tokenizer.model"}
    assert sum(f.stat().st_size for f in files) <= 20 * 1024 * 1024


def test_toy_eval_of_the_bundled_model(tmp_path, capsys):
    assert cli.main(["toy", "eval", "--seed", str(SEED), "--n", str(N), "--json",
                     "--out", str(tmp_path)]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert list(summary) == list(SUMMARY_KEYS)
    for key, bound in LOWER_BOUNDS.items():
        assert summary[key] >= bound, (key, summary[key], bound)

    answers = tmp_path / "answers"
    rec = [json.loads(x)["answer"] for x in (answers / "rec.answers.jsonl").read_text().splitlines()]
    assert sum(len(parse_boxes(a)) == 1 for a in rec) >= 0.9 * len(rec)  # measured: 72 of 74


def test_load_without_arguments_answers_rec_in_pixels():
    pipe = sphinx_mllm.load()
    image = bundled_model_path().parent / "toy-example.jpg"
    answer = pipe.chat(image, "Please provide the bounding box coordinate of the region this "
                       "sentence describes: the red circle.")
    (square,) = parse_boxes(answer.text)
    (obj,) = answer.objects
    # the example is a 128-px square picture: pixels are the answer's [0, 1] values x 128
    for got, value in zip((obj.box.x1, obj.box.y1, obj.box.x2, obj.box.y2),
                          (square.x1, square.y1, square.x2, square.y2)):
        assert got == pytest.approx(value * 128, abs=0.01)
