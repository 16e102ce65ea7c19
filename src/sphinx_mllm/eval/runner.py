"""Benchmark runs in two phases: generate ``answers.jsonl`` (resumable, batched), then score.

``answers.jsonl`` holds one JSON object per item: the benchmark's id fields (see
:class:`~sphinx_mllm.eval.benchmarks.Benchmark`) plus ``answer``, the model's raw text. Any
model's answers in that format can be scored with :func:`score_answers`; ``metrics.json`` records
the run (benchmark, split, model, sampling) and the flat metrics dict.
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from .benchmarks import Benchmark, Item, Key, get_benchmark

log = logging.getLogger(__name__)

ANSWERS_FILE = "answers.jsonl"
METRICS_FILE = "metrics.json"
GREEDY = {"temperature": 0.0, "top_p": 1.0, "top_k": 0}


def json_safe(value: Any) -> Any:
    """``value`` with NaN floats (undefined metrics) replaced by None, so the JSON is standard."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, Mapping):
        return {k: json_safe(v) for k, v in value.items()}
    return value


def read_answers(path: str | Path, benchmark: Benchmark) -> dict[Key, dict]:
    """Answer records by item key (a later line wins). A truncated last line, as a crash in the
    middle of a write leaves it, is skipped with a warning, so a rerun simply redoes that item."""
    records: dict[Key, dict] = {}
    path = Path(path)
    if not path.is_file():
        return records
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                log.warning("%s: line %d is not valid JSON, ignored", path, number)
                continue
            if "answer" not in record:
                raise ValueError(f"{path}: line {number} has no 'answer' field")
            records[benchmark.key(record)] = record
    return records


def load_items(name: str, data_dir: str | Path, split: str | None = None,
               images: str | Path | None = None, limit: int | None = None) -> list[Item]:
    """The first ``limit`` items (all when None) of benchmark ``name`` read from ``data_dir``."""
    benchmark = get_benchmark(name)
    items = benchmark.read(Path(data_dir), benchmark.check_split(split), Path(images) if images else None)
    return items[:limit] if limit is not None else items


def generate_answers(benchmark: Benchmark, items: Sequence[Item], pipeline: Any, answers_path: Path,
                     batch_size: int = 8, sampling: Mapping[str, Any] | None = None,
                     progress: bool = True) -> int:
    """Append answers for the items not yet in ``answers_path``; return how many were written.

    ``pipeline`` is anything with :meth:`~sphinx_mllm.inference.pipeline.Pipeline.batch_chat`.
    ``sampling`` overrides greedy decoding and the benchmark's ``max_new_tokens``. Each batch is
    flushed as soon as it is decoded, so an interrupted run loses at most one batch.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    done = read_answers(answers_path, benchmark)
    todo = [it for it in items if benchmark.key(it.ids) not in done]
    params = {**GREEDY, "max_new_tokens": benchmark.max_new_tokens, **(sampling or {})}
    from tqdm.auto import tqdm  # lazily: only runs that generate need it

    answers_path.parent.mkdir(parents=True, exist_ok=True)
    with open(answers_path, "a+", encoding="utf-8") as out, \
            tqdm(total=len(todo), desc=benchmark.name, unit="item", disable=not progress) as bar:
        if out.tell() > 0:  # end a line torn by a crash, so it cannot swallow the next record
            out.seek(out.tell() - 1)
            if out.read(1) != "\n":
                out.write("\n")
        for start in range(0, len(todo), batch_size):
            batch = todo[start:start + batch_size]
            prefixes = {"answer_prefixes": [it.answer_prefix for it in batch]} \
                if any(it.answer_prefix for it in batch) else {}
            answers = pipeline.batch_chat([it.image for it in batch], [it.prompt for it in batch],
                                          **prefixes, **params)
            for item, answer in zip(batch, answers):
                out.write(json.dumps({**item.ids, "answer": answer.text}) + "\n")
            out.flush()
            bar.update(len(batch))
    return len(todo)


def score_items(benchmark: Benchmark, items: Sequence[Item],
                answers: Mapping[Key, Mapping] | Iterable[Mapping], strict: bool = False, **options) -> dict[str, float]:
    """Score the items that have an answer; ``missing`` counts those that have none.

    ``answers`` is :func:`read_answers`' dict or any iterable of answer records. With ``strict``
    an answer whose key is not among ``items`` (a file of another split or benchmark) raises.
    ``options`` go to the benchmark's scorer (e.g. ``tokenizer`` for captions).
    """
    if not isinstance(answers, Mapping):
        answers = {benchmark.key(r): r for r in answers}
    by_key = {benchmark.key(it.ids): it for it in items}
    unknown = [k for k in answers if k not in by_key]
    if strict and unknown:
        raise ValueError(f"{len(unknown)} answer(s) match no {benchmark.name} item, e.g. "
                         f"{dict(zip(benchmark.id_fields, unknown[0]))}; wrong benchmark or split?")
    paired = [(it, answers[k]["answer"]) for k, it in by_key.items() if k in answers]
    if not paired:
        raise ValueError(f"nothing to score: none of the {len(items)} {benchmark.name} items has an answer")
    metrics = benchmark.score([it for it, _ in paired], [str(a) for _, a in paired], **options)
    return {**metrics, "missing": len(items) - len(paired)}


def score_answers(name: str, answers: str | Path | Iterable[Mapping], data_dir: str | Path,
                  split: str | None = None, images: str | Path | None = None, **options) -> dict[str, float]:
    """Metrics of an answers JSONL file (or records) for benchmark ``name`` on ``data_dir``.

    Every answer must match an item of the split (else ``ValueError``); items without an answer
    are left out of the scores and counted in ``missing``.
    """
    benchmark = get_benchmark(name)
    records = read_answers(answers, benchmark) if isinstance(answers, (str, Path)) else answers
    return score_items(benchmark, load_items(name, data_dir, split, images), records, strict=True, **options)


def run_benchmark(name: str, pipeline: Any, data_dir: str | Path, out_dir: str | Path, *,
                  split: str | None = None, batch_size: int = 8, limit: int | None = None,
                  sampling: Mapping[str, Any] | None = None, images: str | Path | None = None,
                  model_name: str | None = None, progress: bool = True,
                  score_options: Mapping[str, Any] | None = None) -> dict:
    """Answer (resuming ``out_dir/answers.jsonl``) and score benchmark ``name``.

    Decoding is greedy unless ``sampling`` says otherwise (SPHINX's own scripts sampled with
    ``temperature=0.1, top_p=0.75``). Writes ``out_dir/metrics.json`` and returns its content:
    ``{"benchmark", "split", "model", "data_dir", "images", "limit", "sampling", "written",
    "metrics"}``; ``written`` is the number of answers generated by this call.
    """
    benchmark = get_benchmark(name)
    split = benchmark.check_split(split)
    out_dir = Path(out_dir)
    items = load_items(name, data_dir, split, images, limit)
    params = {**GREEDY, "max_new_tokens": benchmark.max_new_tokens, **(sampling or {})}
    written = generate_answers(benchmark, items, pipeline, out_dir / ANSWERS_FILE, batch_size, params,
                               progress)
    metrics = score_items(benchmark, items, read_answers(out_dir / ANSWERS_FILE, benchmark),
                          **(score_options or {}))
    if model_name is None:
        cfg = getattr(getattr(pipeline, "model", None), "cfg", None)
        model_name = getattr(cfg, "name", type(pipeline).__name__)
    result = {"benchmark": name, "split": split, "model": model_name,
              "data_dir": str(Path(data_dir).absolute()),
              "images": str(Path(images).absolute()) if images else None, "limit": limit,
              "sampling": params, "written": written, "metrics": metrics}
    (out_dir / METRICS_FILE).write_text(json.dumps(json_safe(result), indent=2) + "\n")
    return result
