import math

from sphinx_mllm.eval.runner import load_items, score_answers


def test_captions_end_to_end_without_java(benchmark_data, run_twice):
    data_dir, n = benchmark_data("coco-captions")
    records, saved = run_twice("coco-captions", data_dir, n,
                               score_options={"tokenizer": "simple", "metrics": ("bleu", "cider")})
    assert {r["image_id"] for r in records} == {1, 2}
    assert {"bleu_4", "cider"} <= set(saved["metrics"])


def test_keypoints_end_to_end_and_resume(benchmark_data, run_twice):
    data_dir, n = benchmark_data("coco-keypoints")
    records, saved = run_twice("coco-keypoints", data_dir, n)
    assert records[0]["image_id"] == 7 and records[0]["ann_id"] == 70  # 71 has no keypoints
    metrics = saved["metrics"]
    assert 0.0 <= metrics["pck"] <= 100.0 and metrics["n_keypoints"] == 15
    assert metrics["map"] is None or 0.0 <= metrics["map"] <= 100.0


def test_keypoints_prompt_names_the_person_box_in_the_padded_square(benchmark_data):
    [item] = load_items("coco-keypoints", benchmark_data("coco-keypoints")[0])
    # 40x20 image: side 40, y offset 10; box [4, 2, 10, 16] -> (4, 12, 14, 28) / 40.
    assert item.prompt == "Detect the key points of the person in the region [0.10,0.30,0.35,0.70]."


def test_keypoints_scored_by_hand(benchmark_data, tmp_path):
    data_dir, _ = benchmark_data("coco-keypoints")
    # The person's keypoint k sits at pixel (5 + k % 4, 3 + k // 4); in the padded square of the
    # 40x20 image that is ((5 + k % 4) / 40, (13 + k // 4) / 40). Answer the nose exactly and the
    # left eye 10 px off: PCK radius is 0.1 * max(10, 16) = 1.6 px, so 1 of 15 labelled points hits.
    answer = "<p>nose</p> [0.125,0.325] <p>left eye</p> [0.40,0.325]"
    metrics = score_answers("coco-keypoints", [{"image_id": 7, "ann_id": 70, "answer": answer}], data_dir)
    assert math.isclose(metrics["pck"], 100 / 15)


def test_publaynet_end_to_end_and_perfect_answer(benchmark_data, run_twice):
    data_dir, n = benchmark_data("publaynet")
    _, saved = run_twice("publaynet", data_dir, n)
    assert saved["metrics"]["n"] == 1
    # 30x40 page: side 40, x offset 5. Title [3, 2, 20, 4] -> (8, 2, 28, 6) / 40; text
    # [3, 10, 24, 20] -> (8, 10, 32, 30) / 40. Both right, plus one unknown label.
    answer = ("<p>title</p> [0.20,0.05,0.70,0.15] <p>text</p> [0.20,0.25,0.80,0.75] "
              "<p>caption</p> [0.1,0.1,0.2,0.2]")
    metrics = score_answers("publaynet", [{"image_id": 3, "answer": answer}], data_dir)
    assert math.isclose(metrics["map"], 100.0) and metrics["unknown_labels"] == 1
