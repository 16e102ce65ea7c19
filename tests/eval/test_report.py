import re
from pathlib import Path

import pytest

from sphinx_mllm.cli import main
from sphinx_mllm.eval.published import COLUMN_RUNS, PUBLISHED, published_for
from sphinx_mllm.eval.runner import run_benchmark

# Spec 11.2, typed in again by hand: (table, model) -> values in the spec's column order.
SPEC_11_2 = {
    ("MLLM benchmarks", "SPHINX"): [80.7, 1476.1, 322.2, 66.9, 56.2, 69.14, 73.5, 36.0, 25.6, 27.0],
    ("MLLM benchmarks", "SPHINX-1k"): [90.8, 1560.2, 310.0, 67.1, 59.5, 71.62, 74.3, 36.6, 27.9, 27.5],
    ("Academic VQA", "SPHINX"): [62.08, 78.08, 39.91, 62.59, 58.5, 66.01, 50.35, 51.63, 66.01],
    ("Academic VQA", "SPHINX-1k"): [62.21, 80.2, 46.75, 62.88, 65.42, 70.01, 52.68, 58.78, 70.01],
    ("REC (Acc@0.5)", "SPHINX"): [89.15, 91.37, 85.13, 82.77, 87.29, 76.85, 84.87, 83.65, 84.12],
    ("REC (Acc@0.5)", "SPHINX-1k"): [91.05, 92.65, 86.56, 86.64, 91.08, 80.35, 88.19, 88.35, 88.14],
}
SPEC = Path("/work/shared/reference/sphinx-spec.md")


def test_published_table_matches_spec_11_2():
    for (table, model), values in SPEC_11_2.items():
        assert list(PUBLISHED[table][model].values()) == values
    assert published_for("refcocog", "test", "acc50") == [("RefCOCOg test-u", {"SPHINX": 83.65,
                                                                              "SPHINX-1k": 88.35})]
    assert [c for c, _ in published_for("mme", "test", "cognition")] == ["MME-C"]
    assert all(column in next(t for t in PUBLISHED.values() if column in t["SPHINX"])["SPHINX"]
               for column in COLUMN_RUNS)


@pytest.mark.skipif(not SPEC.is_file(), reason="spec not present")
def test_published_table_matches_the_spec_file():
    section = SPEC.read_text().split("### 11.2", 1)[1].split("\n## ", 1)[0]
    rows = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if cells[0] in ("SPHINX", "SPHINX-1k") and all(re.fullmatch(r"[\d.]+", c) for c in cells[1:]):
            rows.setdefault(cells[0], []).append([float(c) for c in cells[1:]])
    for i, table in enumerate(PUBLISHED):
        for model in ("SPHINX", "SPHINX-1k"):
            assert list(PUBLISHED[table][model].values()) == rows[model][i]


def test_report_has_every_run_and_drawn_examples(benchmark_data, toy_pipeline, tmp_path):
    runs = []
    for name in ("refcoco", "coco-keypoints", "publaynet", "mme"):
        data_dir, _ = benchmark_data(name)
        out = tmp_path / "runs" / f"toy-{name}"
        run_benchmark(name, toy_pipeline, data_dir, out, sampling={"max_new_tokens": 2}, progress=False)
        runs.append(str(out))
    page = tmp_path / "site" / "report.md"
    assert main(["report", *runs, "--out", str(page), "--examples", "2"]) == 0
    md, html = page.read_text(), page.with_suffix(".html").read_text()
    for name in ("refcoco", "coco-keypoints", "publaynet", "mme"):
        assert f"toy-{name}" in md and f"toy-{name}" in html
    assert "| toy-refcoco | refcoco | val | toy | acc50 |" in md and "| 89.15 | 91.05 |" in md
    assert "| perception |" in md and "1476.10" in md and "| cognition |" in md and "322.20" in md
    images = sorted((tmp_path / "site" / "report_files").glob("*.png"))
    # refcoco: 2 of its 3 sentences; keypoints: 1 person; layout: 1 page; MME is not drawn.
    assert len(images) == 4 and all(p.name in md and p.name in html for p in images)
    assert "<table>" in html and "Published SPHINX numbers" in html


def test_a_benchmark_record_says_what_the_report_draws():
    from sphinx_mllm.eval.benchmarks import BENCHMARKS, Benchmark, register_benchmark

    drawn = {name: b.drawing for name, b in BENCHMARKS.items() if b.drawing}
    assert drawn == {"refcoco": "box", "refcoco+": "box", "refcocog": "box",
                     "coco-keypoints": "keypoints", "publaynet": "layout"}
    odd = Benchmark("odd", BENCHMARKS["mme"].read, BENCHMARKS["mme"].score, ("id",), ("val",), "val",
                    8, "acc", drawing="heatmap")
    with pytest.raises(ValueError, match="drawing must be one of"):
        register_benchmark(odd)
