import pytest

from sphinx_mllm.eval.runner import load_items


@pytest.mark.parametrize("split", ["random", "popular", "adversarial"])
def test_pope_end_to_end_each_split(split, benchmark_data, run_twice):
    root, n = benchmark_data("pope", split=split)
    records, saved = run_twice("pope", root, n, split=split)
    metrics = saved["metrics"]
    assert saved["split"] == split
    for key in ("accuracy", "precision", "recall", "f1", "yes_ratio"):
        assert 0.0 <= metrics[key] <= 100.0
    assert metrics["tp"] + metrics["fp"] + metrics["tn"] + metrics["fn"] == n


def test_mme_end_to_end_and_layouts(benchmark_data, run_twice):
    data_dir, n = benchmark_data("mme")
    items = load_items("mme", data_dir)
    # Both layouts: txt next to the image (existence), and images/ + questions_answers_YN/ (artwork).
    assert {it.meta["subtask"] for it in items} == {"existence", "artwork"}
    assert {it.ids["question_id"] for it in items} == {
        "existence/000000006040.jpg/0", "existence/000000006040.jpg/1",
        "artwork/10002.jpg/0", "artwork/10002.jpg/1"}
    assert items[0].prompt == ("Is there a train in this image? Please answer yes or no.\n"
                               "Answer the question using a single word or phrase.")
    _, saved = run_twice("mme", data_dir, n)
    metrics = saved["metrics"]
    assert 0.0 <= metrics["perception"] <= 400.0 and metrics["cognition"] == 0.0
    assert 0.0 <= metrics["existence/acc"] <= 100.0
