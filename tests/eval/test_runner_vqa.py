import json

import pytest

from sphinx_mllm.eval.benchmarks import get_benchmark
from sphinx_mllm.eval.runner import load_items, run_benchmark

PRIMARY = {"vqav2": "accuracy", "okvqa": "accuracy", "gqa": "accuracy", "textvqa": "accuracy",
           "vizwiz": "accuracy", "docvqa": "anls", "chartqa": "relaxed_accuracy", "scienceqa": "accuracy"}


@pytest.mark.parametrize("name", sorted(PRIMARY))
def test_vqa_family_end_to_end_and_resume(name, benchmark_data, run_twice):
    data_dir, n = benchmark_data(name)
    records, saved = run_twice(name, data_dir, n)
    metrics = saved["metrics"]
    assert get_benchmark(name).primary == PRIMARY[name]
    assert 0.0 <= metrics[PRIMARY[name]] <= 100.0 and metrics["n"] == n
    assert all("question_id" in r for r in records)


def test_prompts_come_from_the_task_registry(benchmark_data):
    vqav2 = load_items("vqav2", benchmark_data("vqav2")[0])
    assert vqav2[0].prompt == "How many dogs?\nAnswer the question using a single word or phrase."
    assert vqav2[1].reference == ["red"] * 3 + ["blue"] * 7
    vizwiz = load_items("vizwiz", benchmark_data("vizwiz")[0])
    assert vizwiz[0].prompt == ("What is this? When the provided information is insufficient, respond "
                                "with 'Unanswerable'.\nAnswer the question using a single word or phrase.")
    assert vizwiz[0].ids == {"question_id": "VizWiz_val_00000000.jpg"}
    [sqa] = load_items("scienceqa", benchmark_data("scienceqa")[0])  # the text-only problem is out
    assert sqa.prompt == ("Context: Look at the picture.\nWhich is a mammal?\nA. shark\nB. whale\n"
                          "C. trout\nAnswer with the option's letter from the given choices directly.")
    assert sqa.reference == "B" and sqa.image.name == "image.png"
    assert sqa.answer_prefix == " The answer is"


def test_answer_prefix_is_prefilled_in_the_prompt(toy_pipeline):
    plain = toy_pipeline.processor.encode_prompt([{"role": "user", "content": "Q"}], True)
    filled = toy_pipeline.processor.encode_prompt([{"role": "user", "content": "Q"}], True,
                                                  " The answer is")
    tok = toy_pipeline.tokenizer
    assert filled[:len(plain)] == plain
    assert tok.decode(filled[len(plain):]).strip() == "The answer is"
    answer = toy_pipeline.chat(None, "Q", answer_prefix=" The answer is", max_new_tokens=2)
    assert answer.prompt_tokens == len(filled) - toy_pipeline.model.cfg.image_tokens


def test_limit_and_resume_after_a_torn_line(benchmark_data, toy_pipeline, tmp_path):
    data_dir, _ = benchmark_data("gqa")
    out = tmp_path / "run"
    first = run_benchmark("gqa", toy_pipeline, data_dir, out, limit=1, sampling={"max_new_tokens": 2},
                          progress=False)
    assert first["written"] == 1 and first["metrics"]["n"] == 1
    answers = out / "answers.jsonl"
    answers.write_text(answers.read_text() + '{"question_id": "209683')  # a crash mid-write
    second = run_benchmark("gqa", toy_pipeline, data_dir, out, sampling={"max_new_tokens": 2},
                           progress=False)
    assert second["written"] == 1 and second["metrics"]["n"] == 2
    assert json.loads((out / "metrics.json").read_text())["metrics"]["missing"] == 0
