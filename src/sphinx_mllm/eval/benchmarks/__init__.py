"""Benchmarks by name: how to read each one's downloaded layout, prompt it and score it.

    from sphinx_mllm.eval.benchmarks import get_benchmark
    bench = get_benchmark("pope")
    items = bench.read(Path("data/pope"), bench.check_split("adversarial"), None)

Layouts, ids and prompts are listed in docs/evaluation.md.
"""

# Each module registers its benchmarks on import; this order is the registry (and --help) order.
from . import vqa, yesno, grounding, coco  # noqa: F401, I001
from .base import BENCHMARKS, Benchmark, Item, Key, get_benchmark, register_benchmark, task_prompt

BENCHMARK_NAMES = tuple(BENCHMARKS)

__all__ = ["BENCHMARKS", "BENCHMARK_NAMES", "Benchmark", "Item", "Key", "get_benchmark",
           "register_benchmark", "task_prompt"]
