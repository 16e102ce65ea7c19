"""LLaVA / LLaMA2-Accessory conversation files and plain-text JSONL (text-only dialogue)."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

from ...conversation import Message
from ...tasks import TASK_NAMES
from ..files import read_records
from ..sample import ASSISTANT_ROLES, HUMAN_ROLES, Malformed, Sample, Skips, iter_guarded


def annotation_files(root: Path, suffixes: tuple[str, ...]) -> list[Path]:
    """``root`` itself when it is a file, else its files with one of ``suffixes``, sorted."""
    if root.is_file():
        return [root]
    files = sorted(p for p in root.glob("*") if p.suffix in suffixes)
    if not files:
        raise FileNotFoundError(f"no {'/'.join(suffixes)} files in {root}")
    return files


def _value(turn: dict) -> str:
    value = turn["value"]
    # Accessory stringifies non-string values and removes the <image> marker (spec 9.3).
    value = value if isinstance(value, str) else str(value)
    return value.replace("<image>", "").strip()


def parse_turns(turns: object) -> tuple[Message, ...]:
    """``[{"from": "human"|"user"|"gpt"|"assistant", "value": ...}]`` -> alternating messages.

    The conversation must start with the human, alternate, and end with an answer.
    """
    if not isinstance(turns, list) or not turns:
        raise Malformed("conversations must be a non-empty list")
    messages = []
    for i, turn in enumerate(turns):
        role = turn["from"]
        expected = HUMAN_ROLES if i % 2 == 0 else ASSISTANT_ROLES
        if role not in expected:
            raise Malformed(f"turn {i} is from {role!r}, expected one of {expected}")
        messages.append(Message("user" if i % 2 == 0 else "assistant", _value(turn)))
    if len(messages) % 2:
        raise Malformed("the last turn is a question without an answer")
    return tuple(messages)


def read_llava(root: Path, split: str | None, images: Path | None, seed: int,
               skips: Skips) -> Iterator[Sample]:
    """Records ``{"image"?, "conversations": [...], "task"?, "source"?}`` from .json/.jsonl files.

    Relative image paths are resolved against ``images`` (default: the annotation file's folder).
    ``task`` is kept when it names a known task (files written by ``data convert`` round-trip);
    otherwise a sample is ``conversation`` with an image and ``dialogue`` without.
    """
    for file in annotation_files(root, (".json", ".jsonl")):
        base = images if images is not None else file.parent

        def convert(key: str, record: dict, file: Path = file, base: Path = base) -> list[Sample]:
            messages = parse_turns(record["conversations"])
            image = record.get("image")
            if image is not None and not isinstance(image, str):
                raise Malformed(f"image must be a path string, got {image!r}")
            task = record.get("task")
            if task not in TASK_NAMES:
                task = "conversation" if image else "dialogue"
            source = record.get("source") or f"llava:{file.name}:{record.get('id', key)}"
            return [Sample(base / image if image else None, messages, task, str(source))]

        yield from iter_guarded(file, read_records(file, skips), skips, convert)


def read_text(root: Path, split: str | None, images: Path | None, seed: int,
              skips: Skips) -> Iterator[Sample]:
    """Plain text JSONL ``{"text": ...}`` (RefinedWeb style) as text-only ``dialogue`` samples.

    Each text becomes one assistant turn after an empty user turn (our choice: the spec's
    pre-training mixes raw text, our template needs a turn to supervise).
    """
    for file in annotation_files(root, (".jsonl",)):
        def convert(key: str, record: dict, file: Path = file) -> list[Sample]:
            body = record["text"]
            if not isinstance(body, str) or not body.strip():
                raise Malformed("text must be a non-empty string")
            return [Sample(None, (Message("user", ""), Message("assistant", body.strip())),
                           "dialogue", f"text:{file.name}:{record.get('id', key)}")]

        yield from iter_guarded(file, read_records(file, skips), skips, convert)
