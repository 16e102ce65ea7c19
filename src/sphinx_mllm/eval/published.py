"""SPHINX's published numbers (spec 11.2: the README of LLaMA2-Accessory at ``87b7f14``), as data.

``PUBLISHED[table][model][column]`` is the number as printed; ``COLUMN_RUNS`` says which of our
(benchmark, split, metric) a column compares with, where we run that benchmark. Columns without an
entry (MMBench, SEED, VSR, ...) are shown in the report for reference only.
"""

from __future__ import annotations

MODELS = ("SPHINX", "SPHINX-1k")

PUBLISHED: dict[str, dict[str, dict[str, float]]] = {
    "MLLM benchmarks": {
        "SPHINX": {"POPE": 80.7, "MME-P": 1476.1, "MME-C": 322.2, "MMB": 66.9, "MMB-CN": 56.2,
                   "SEED": 69.14, "LLaVA-W": 73.5, "MM-Vet": 36.0, "CCBench": 25.6, "MathVista": 27.0},
        "SPHINX-1k": {"POPE": 90.8, "MME-P": 1560.2, "MME-C": 310.0, "MMB": 67.1, "MMB-CN": 59.5,
                      "SEED": 71.62, "LLaVA-W": 74.3, "MM-Vet": 36.6, "CCBench": 27.9, "MathVista": 27.5},
    },
    "Academic VQA": {
        "SPHINX": {"OKVQA": 62.08, "VQAv2": 78.08, "VizWiz": 39.91, "GQA": 62.59, "VSR": 58.5,
                   "ScienceQA": 66.01, "IconVQA": 50.35, "TextVQA": 51.63, "OCR-VQA": 66.01},
        "SPHINX-1k": {"OKVQA": 62.21, "VQAv2": 80.2, "VizWiz": 46.75, "GQA": 62.88, "VSR": 65.42,
                      "ScienceQA": 70.01, "IconVQA": 52.68, "TextVQA": 58.78, "OCR-VQA": 70.01},
    },
    "REC (Acc@0.5)": {
        "SPHINX": {"RefCOCO val": 89.15, "RefCOCO testA": 91.37, "RefCOCO testB": 85.13,
                   "RefCOCO+ val": 82.77, "RefCOCO+ testA": 87.29, "RefCOCO+ testB": 76.85,
                   "RefCOCOg val-u": 84.87, "RefCOCOg test-u": 83.65, "Avg": 84.12},
        "SPHINX-1k": {"RefCOCO val": 91.05, "RefCOCO testA": 92.65, "RefCOCO testB": 86.56,
                      "RefCOCO+ val": 86.64, "RefCOCO+ testA": 91.08, "RefCOCO+ testB": 80.35,
                      "RefCOCOg val-u": 88.19, "RefCOCOg test-u": 88.35, "Avg": 88.14},
    },
}
"""Upstream note (spec 11.2): the ScienceQA and OCR-VQA columns repeat the same values, likely a
copy error in the README; issue 207 upstream reports REC numbers below this table."""

COLUMN_RUNS: dict[str, tuple[str, str | None, str]] = {
    # POPE: the README gives one number per model and does not say which split or metric; we
    # compare it with the F1 of every POPE split we run.
    "POPE": ("pope", None, "f1"),
    "MME-P": ("mme", "test", "perception"),
    "MME-C": ("mme", "test", "cognition"),
    "OKVQA": ("okvqa", "val2014", "accuracy"),
    "VQAv2": ("vqav2", "val2014", "accuracy"),
    "VizWiz": ("vizwiz", "val", "accuracy"),
    "GQA": ("gqa", "testdev_balanced", "accuracy"),
    "ScienceQA": ("scienceqa", "test", "accuracy"),
    "TextVQA": ("textvqa", "val", "accuracy"),
    "RefCOCO val": ("refcoco", "val", "acc50"),
    "RefCOCO testA": ("refcoco", "testA", "acc50"),
    "RefCOCO testB": ("refcoco", "testB", "acc50"),
    "RefCOCO+ val": ("refcoco+", "val", "acc50"),
    "RefCOCO+ testA": ("refcoco+", "testA", "acc50"),
    "RefCOCO+ testB": ("refcoco+", "testB", "acc50"),
    "RefCOCOg val-u": ("refcocog", "val", "acc50"),
    "RefCOCOg test-u": ("refcocog", "test", "acc50"),
}


def published_for(benchmark: str, split: str, metric: str) -> list[tuple[str, dict[str, float]]]:
    """``[(column, {model: value})]`` of the published columns that compare with this run's
    ``metric`` (several for MME: perception and cognition); empty when SPHINX published none."""
    out = []
    for column, (bench, col_split, col_metric) in COLUMN_RUNS.items():
        if bench == benchmark and col_split in (None, split) and col_metric == metric:
            table = next(t for t in PUBLISHED.values() if column in t[MODELS[0]])
            out.append((column, {m: table[m][column] for m in MODELS}))
    return out
