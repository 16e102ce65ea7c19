import pytest

from sphinx_mllm.eval.runner import load_items
from sphinx_mllm.tasks import Box


@pytest.mark.parametrize("name", ["refcoco", "refcoco+", "refcocog"])
def test_rec_end_to_end_and_resume(name, benchmark_data, run_twice):
    data_dir, n = benchmark_data(name)
    records, saved = run_twice(name, data_dir, n)
    assert {(r["ref_id"], r["sent_id"]) for r in records} == {(1, 100), (1, 101), (1, 102)}
    metrics = saved["metrics"]
    assert 0.0 <= metrics["acc50"] <= 100.0 and metrics["n"] == 3


def test_rec_items_prompt_and_pixel_reference(benchmark_data):
    data_dir, _ = benchmark_data("refcoco")
    items = load_items("refcoco", data_dir, split="testA")
    [item] = items
    assert item.ids == {"ref_id": 2, "sent_id": 200}
    assert item.prompt == ("Please provide the bounding box coordinate of the region this sentence "
                           "describes: right dog.")
    assert item.reference == Box(24, 4, 36, 16)  # COCO [x, y, w, h] -> pixel corners
    assert (item.frame.width, item.frame.height) == (40, 20)
    # The trailing period of a sentence is not doubled by the template.
    assert load_items("refcoco", data_dir)[2].prompt.endswith("describes: brown dog.")
