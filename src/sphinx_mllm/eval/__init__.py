"""Evaluation: metrics (pure functions behind a name registry), benchmarks (layouts, prompts,
scoring), the two-phase runner (``answers.jsonl``, then ``metrics.json``), the report page and
harness adapters. See docs/evaluation.md."""
