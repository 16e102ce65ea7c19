"""The benchmark record, its registry, and the prompt helper every benchmark shares.

A :class:`Benchmark` knows how to read one benchmark's *downloaded* file layout into
:class:`Item` records, which prompt and token budget to use, which fields identify an item in
``answers.jsonl``, and how to score raw answer texts with the metrics registry. Running the model
is the runner's job (:mod:`sphinx_mllm.eval.runner`), so a benchmark never touches a model.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from ...tasks import get_task

Key = tuple[str, ...]
"""An item's identity: its benchmark's ``id_fields`` values, in order, as strings (so an answers
file that writes ``"question_id": "42"`` matches an annotation file's ``42``)."""


@dataclass(frozen=True)
class Item:
    """One question put to the model.

    ``ids`` maps the benchmark's id fields to values (e.g. ``{"question_id": 262148000}``);
    ``image`` is the image file; ``prompt`` the full user turn; ``reference`` whatever the
    benchmark's scorer needs (answer lists, a pixel box, ...); ``frame`` the original image size
    where answers carry coordinates in the padded square (REC, pose, layout), else None.
    """

    ids: Mapping[str, Any]
    image: Path
    prompt: str
    reference: Any
    frame: Any = None
    meta: Mapping[str, Any] = field(default_factory=dict)
    answer_prefix: str = ""  # pre-filled start of the answer (ScienceQA: " The answer is")


Reader = Callable[[Path, str, "Path | None"], list[Item]]
Scorer = Callable[[Sequence[Item], Sequence[str]], dict[str, float]]


DRAWINGS = ("box", "keypoints", "layout")
"""How ``eval/report.py`` can draw an item: its reference box, a person's skeleton, page blocks."""


@dataclass(frozen=True)
class Benchmark:
    """One benchmark family member.

    ``read(data_dir, split, images)`` returns the items of ``split`` in file order (``images``
    overrides the image folder of the release layout). ``score(items, answers, **options)`` turns
    the raw answers (``answers[i]`` for ``items[i]``) into a flat metrics dict; ``primary`` names
    the headline key of that dict (what the report's table shows). ``max_new_tokens`` follows
    spec 11.1 where SPHINX's ``annotation_config.json`` sets it (``budget_source == "spec"``).
    ``drawing`` says how the report draws an item with its answer (:data:`DRAWINGS`), or None.
    """

    name: str
    read: Reader
    score: Callable[..., dict[str, float]]
    id_fields: tuple[str, ...]
    splits: tuple[str, ...]
    default_split: str
    max_new_tokens: int
    primary: str
    budget_source: str = "spec"
    description: str = ""
    drawing: str | None = None

    def key(self, record: Mapping[str, Any]) -> Key:
        """The identity of an item or answer record; ``KeyError`` names a missing id field."""
        try:
            return tuple(str(record[f]) for f in self.id_fields)
        except KeyError as err:
            raise KeyError(f"{self.name}: answer record lacks id field {err.args[0]!r} "
                           f"(needs {', '.join(self.id_fields)})") from None

    def check_split(self, split: str | None) -> str:
        split = split or self.default_split
        if split not in self.splits:
            raise ValueError(f"{self.name}: unknown split {split!r}; one of {', '.join(self.splits)}")
        return split


BENCHMARKS: dict[str, Benchmark] = {}


def register_benchmark(benchmark: Benchmark) -> Benchmark:
    if benchmark.name in BENCHMARKS:
        raise ValueError(f"benchmark {benchmark.name!r} is already registered")
    if benchmark.drawing not in (None, *DRAWINGS):
        raise ValueError(f"{benchmark.name}: drawing must be one of {DRAWINGS} or None, "
                         f"got {benchmark.drawing!r}")
    BENCHMARKS[benchmark.name] = benchmark
    return benchmark


def get_benchmark(name: str) -> Benchmark:
    try:
        return BENCHMARKS[name]
    except KeyError:
        raise KeyError(f"unknown benchmark {name!r}; known: {', '.join(BENCHMARKS)}") from None


def task_prompt(task: str, example: Any) -> str:
    """The user turn of ``task`` for ``example`` from the tasks prompt registry (the one source of
    truth). Evaluation always uses the task's *first* template, so prompts are deterministic."""
    spec = get_task(task)
    return spec.prompts[0].format(**spec.fields(example))
