"""Short-answer VQA: VQAv2, OK-VQA, GQA and TextVQA, each in its released file layout.

Every question becomes one ``vqa`` sample whose answer is the dataset's consensus answer.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Iterator

from ...tasks import QA, make_turn, sample_rng
from .. import layouts
from ..files import read_json, require
from ..sample import Malformed, Sample, Skips, iter_guarded, messages_from_pairs, text


def _vqa_sample(image: Path, question: object, answer: object, source: str, seed: int) -> Sample:
    example = QA(text(question, "question"), text(answer, "answer"))
    pair = make_turn("vqa", example, sample_rng(seed, source))
    return Sample(image, messages_from_pairs([pair]), "vqa", source)


def majority(answers: object) -> str:
    """Most frequent answer string (first seen wins a tie); accepts strings or ``{"answer": ..}``."""
    if not isinstance(answers, list) or not answers:
        raise Malformed("no answers")
    values = [a["answer"] if isinstance(a, dict) else a for a in answers]
    return Counter(v for v in values if isinstance(v, str) and v.strip()).most_common(1)[0][0]


def _read_mscoco_vqa(name: str, files: layouts.MscocoVQA, seed: int,
                     skips: Skips) -> Iterator[Sample]:
    questions = read_json(require(files.questions, f"{name} questions"))["questions"]
    annotations = read_json(require(files.annotations, f"{name} annotations"))["annotations"]
    by_question = {a["question_id"]: a for a in annotations if isinstance(a, dict)
                   and "question_id" in a}

    def convert(key: str, q: dict) -> list[Sample]:
        ann = by_question.get(q["question_id"])
        if ann is None:
            raise Malformed("no annotation for this question")
        # VQAv2 stores the consensus as multiple_choice_answer; OK-VQA only the ten answers.
        answer = ann.get("multiple_choice_answer") or majority(ann["answers"])
        return [_vqa_sample(files.image(q["image_id"]), q["question"], answer,
                            f"{name}:{files.questions.name}:{q['question_id']}", seed)]

    items = ((f"question {q.get('question_id') if isinstance(q, dict) else q!r}", q)
             for q in questions)
    yield from iter_guarded(files.questions, items, skips, convert)


def read_vqav2(root: Path, split: str | None, images: Path | None, seed: int,
               skips: Skips) -> Iterator[Sample]:
    """VQAv2 (default split ``train2014``; files: :func:`sphinx_mllm.data.layouts.vqav2`)."""
    yield from _read_mscoco_vqa("vqav2", layouts.vqav2(root, split or "train2014", images), seed,
                                skips)


def read_okvqa(root: Path, split: str | None, images: Path | None, seed: int,
               skips: Skips) -> Iterator[Sample]:
    """OK-VQA (default split ``train2014``; files: :func:`sphinx_mllm.data.layouts.okvqa`)."""
    yield from _read_mscoco_vqa("okvqa", layouts.okvqa(root, split or "train2014", images), seed,
                                skips)


def read_gqa(root: Path, split: str | None, images: Path | None, seed: int,
             skips: Skips) -> Iterator[Sample]:
    """GQA (default split ``train_balanced``; files: :func:`sphinx_mllm.data.layouts.gqa`): a
    dict question id -> ``{"imageId", "question", "answer", ...}``."""
    file, folder = layouts.gqa(root, split or "train_balanced", images)
    data = read_json(require(file, "GQA questions"))
    if not isinstance(data, dict):
        raise ValueError(f"{file}: expected a dict of questions, got {type(data).__name__}")

    def convert(key: str, q: dict) -> list[Sample]:
        image = folder / f"{text(q['imageId'], 'imageId')}.jpg"
        return [_vqa_sample(image, q["question"], q["answer"], f"gqa:{file.name}:{key}", seed)]

    yield from iter_guarded(file, data.items(), skips, convert)


def read_textvqa(root: Path, split: str | None, images: Path | None, seed: int,
                 skips: Skips) -> Iterator[Sample]:
    """TextVQA (default split ``train``; files: :func:`sphinx_mllm.data.layouts.textvqa`),
    ``{"data": [...]}``. The answer is the majority of the ten human answers."""
    file, folder = layouts.textvqa(root, split or "train", images)
    require(file, "TextVQA annotations")

    def convert(key: str, q: dict) -> list[Sample]:
        image = folder / f"{text(q['image_id'], 'image_id')}.jpg"
        return [_vqa_sample(image, q["question"], majority(q["answers"]),
                            f"textvqa:{file.name}:{q['question_id']}", seed)]

    items = ((f"question {q.get('question_id') if isinstance(q, dict) else q!r}", q)
             for q in read_json(file)["data"])
    yield from iter_guarded(file, items, skips, convert)
