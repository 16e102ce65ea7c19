"""Short-answer VQA: VQAv2, OK-VQA, GQA and TextVQA, each in its released file layout.

Every question becomes one ``vqa`` sample whose answer is the dataset's consensus answer.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Iterator

from ...tasks import QA, make_turn, sample_rng
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


def _read_mscoco_vqa(name: str, questions_file: Path, annotations_file: Path, images: Path,
                     split: str, seed: int, skips: Skips) -> Iterator[Sample]:
    questions = read_json(require(questions_file, f"{name} questions"))["questions"]
    annotations = read_json(require(annotations_file, f"{name} annotations"))["annotations"]
    by_question = {a["question_id"]: a for a in annotations if isinstance(a, dict)
                   and "question_id" in a}

    def convert(key: str, q: dict) -> list[Sample]:
        ann = by_question.get(q["question_id"])
        if ann is None:
            raise Malformed("no annotation for this question")
        # VQAv2 stores the consensus as multiple_choice_answer; OK-VQA only the ten answers.
        answer = ann.get("multiple_choice_answer") or majority(ann["answers"])
        image = images / f"COCO_{split}_{int(q['image_id']):012d}.jpg"
        return [_vqa_sample(image, q["question"], answer,
                            f"{name}:{questions_file.name}:{q['question_id']}", seed)]

    items = ((f"question {q.get('question_id') if isinstance(q, dict) else q!r}", q)
             for q in questions)
    yield from iter_guarded(questions_file, items, skips, convert)


def read_vqav2(root: Path, split: str | None, images: Path | None, seed: int,
               skips: Skips) -> Iterator[Sample]:
    """``v2_OpenEnded_mscoco_{split}_questions.json`` + ``v2_mscoco_{split}_annotations.json``;
    images ``COCO_{split}_{id:012d}.jpg`` in ``images`` (default ``ROOT/{split}``)."""
    split = split or "train2014"
    yield from _read_mscoco_vqa("vqav2", root / f"v2_OpenEnded_mscoco_{split}_questions.json",
                                root / f"v2_mscoco_{split}_annotations.json",
                                images or root / split, split, seed, skips)


def read_okvqa(root: Path, split: str | None, images: Path | None, seed: int,
               skips: Skips) -> Iterator[Sample]:
    """``OpenEnded_mscoco_{split}_questions.json`` + ``mscoco_{split}_annotations.json``."""
    split = split or "train2014"
    yield from _read_mscoco_vqa("okvqa", root / f"OpenEnded_mscoco_{split}_questions.json",
                                root / f"mscoco_{split}_annotations.json",
                                images or root / split, split, seed, skips)


def read_gqa(root: Path, split: str | None, images: Path | None, seed: int,
             skips: Skips) -> Iterator[Sample]:
    """``{split}_questions.json`` (default ``train_balanced``) in ``ROOT`` or
    ``ROOT/questions1.2``: a dict question id -> ``{"imageId", "question", "answer", ...}``;
    images ``{imageId}.jpg`` in ``images`` (default ``ROOT/images``)."""
    split = split or "train_balanced"
    name = f"{split}_questions.json"
    file = root / name if (root / name).is_file() else root / "questions1.2" / name
    data = read_json(require(file, "GQA questions"))
    if not isinstance(data, dict):
        raise ValueError(f"{file}: expected a dict of questions, got {type(data).__name__}")
    folder = images or root / "images"

    def convert(key: str, q: dict) -> list[Sample]:
        image = folder / f"{text(q['imageId'], 'imageId')}.jpg"
        return [_vqa_sample(image, q["question"], q["answer"], f"gqa:{file.name}:{key}", seed)]

    yield from iter_guarded(file, data.items(), skips, convert)


def read_textvqa(root: Path, split: str | None, images: Path | None, seed: int,
                 skips: Skips) -> Iterator[Sample]:
    """``TextVQA_0.5.1_{split}.json`` (``{"data": [...]}``, default split ``train``); images
    ``{image_id}.jpg`` in ``images`` (default ``ROOT/train_images``, ``ROOT/test_images`` for
    test). The answer is the majority of the ten human answers."""
    split = split or "train"
    candidates = sorted(root.glob(f"TextVQA_*_{split}.json"))
    file = require(candidates[-1] if candidates else root / f"TextVQA_0.5.1_{split}.json",
                   "TextVQA annotations")
    folder = images or root / ("test_images" if split == "test" else "train_images")

    def convert(key: str, q: dict) -> list[Sample]:
        image = folder / f"{text(q['image_id'], 'image_id')}.jpg"
        return [_vqa_sample(image, q["question"], majority(q["answers"]),
                            f"textvqa:{file.name}:{q['question_id']}", seed)]

    items = ((f"question {q.get('question_id') if isinstance(q, dict) else q!r}", q)
             for q in read_json(file)["data"])
    yield from iter_guarded(file, items, skips, convert)
