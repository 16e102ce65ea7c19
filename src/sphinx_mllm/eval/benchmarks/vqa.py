"""Short-answer and multiple-choice VQA benchmarks, read from their released file layouts.

VQAv2, OK-VQA, TextVQA and VizWiz score with VQA accuracy over the ten human answers, GQA with
exact match, DocVQA with ANLS, ChartQA with relaxed accuracy, ScienceQA-IMG with option-letter
accuracy. Every prompt comes from the tasks registry (``vqa`` / ``multiple_choice``); token
budgets are SPHINX's ``annotation_config.json`` values (spec 11.1).
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from ...data import layouts
from ...data.files import read_json, require
from ...data.layouts import first_existing
from ...tasks import QA, Choice
from ...tasks.registry import LETTERS, MULTIPLE_CHOICE_ANSWER_PREFIX
from ..metrics import get_metric
from .base import Benchmark, Item, register_benchmark, task_prompt

def short_answer_prompt(question: str) -> str:
    """``{question}\\nAnswer the question using a single word or phrase.`` (task ``vqa``)."""
    return task_prompt("vqa", QA(question.strip(), ""))


def _vqa_score(items: Sequence[Item], answers: Sequence[str]) -> dict[str, float]:
    return get_metric("vqa_accuracy")(answers, [it.reference for it in items])


# --- VQAv2 / OK-VQA: COCO-style questions + annotations JSON --------------------------------------


def _read_mscoco_vqa(files: layouts.MscocoVQA) -> list[Item]:
    qs = read_json(require(files.questions, "questions file"))["questions"]
    anns = {a["question_id"]: a
            for a in read_json(require(files.annotations, "annotations file"))["annotations"]}
    return [Item({"question_id": q["question_id"]}, files.image(q["image_id"]),
                 short_answer_prompt(q["question"]),
                 [a["answer"] for a in anns[q["question_id"]]["answers"]]) for q in qs]


def read_vqav2(root: Path, split: str, images: Path | None) -> list[Item]:
    """VQAv2 in its released layout (:func:`sphinx_mllm.data.layouts.vqav2`)."""
    return _read_mscoco_vqa(layouts.vqav2(root, split, images))


def read_okvqa(root: Path, split: str, images: Path | None) -> list[Item]:
    """OK-VQA in its released layout (:func:`sphinx_mllm.data.layouts.okvqa`); the ``answer``
    field of each of the ten answers is the official, already-processed form."""
    return _read_mscoco_vqa(layouts.okvqa(root, split, images))


# --- GQA ------------------------------------------------------------------------------------------


def read_gqa(root: Path, split: str, images: Path | None) -> list[Item]:
    """GQA (:func:`sphinx_mllm.data.layouts.gqa`): question id -> record."""
    file, folder = layouts.gqa(root, split, images)
    data = read_json(require(file, "GQA questions"))
    return [Item({"question_id": qid}, folder / f"{q['imageId']}.jpg", short_answer_prompt(q["question"]),
                 q["answer"]) for qid, q in data.items()]


def _exact_score(items: Sequence[Item], answers: Sequence[str]) -> dict[str, float]:
    return get_metric("exact_match")(answers, [it.reference for it in items])


# --- TextVQA / VizWiz -----------------------------------------------------------------------------


def read_textvqa(root: Path, split: str, images: Path | None) -> list[Item]:
    """TextVQA (:func:`sphinx_mllm.data.layouts.textvqa`), ``{"data": [...]}``."""
    file, folder = layouts.textvqa(root, split, images)
    return [Item({"question_id": q["question_id"]}, folder / f"{q['image_id']}.jpg",
                 short_answer_prompt(q["question"]), list(q["answers"]))
            for q in read_json(require(file, "TextVQA file"))["data"]]


def read_vizwiz(root: Path, split: str, images: Path | None) -> list[Item]:
    """``{split}.json`` in ROOT or ROOT/Annotations: a list of ``{"image", "question",
    "answers": [{"answer", ...}]}``; images ``{images or ROOT/split}/{image}``. VizWiz has no
    question id: each image carries one question, so ``question_id`` is the image file name."""
    file = require(first_existing(root / f"{split}.json", root / "Annotations" / f"{split}.json"),
                   "VizWiz annotations")
    folder = images or root / split
    return [Item({"question_id": q["image"]}, folder / q["image"],
                 task_prompt("unanswerable_vqa", QA(q["question"].strip(), "")),
                 [a["answer"] for a in q["answers"]]) for q in read_json(file)]


# --- DocVQA ---------------------------------------------------------------------------------------


def read_docvqa(root: Path, split: str, images: Path | None) -> list[Item]:
    """``{split}/{split}_v1.0.json`` (or ``{split}_v1.0_withQT.json``; ``{"data": [...]}`` with
    ``questionId``, ``question``, ``image``: a path relative to the json's folder, ``answers``).
    ``question_id`` is the file's ``questionId``."""
    folder = root / split
    file = require(first_existing(folder / f"{split}_v1.0.json", folder / f"{split}_v1.0_withQT.json",
                                  root / f"{split}_v1.0.json"), "DocVQA annotations")
    base = images or file.parent
    return [Item({"question_id": q["questionId"]}, base / q["image"], short_answer_prompt(q["question"]),
                 list(q["answers"])) for q in read_json(file)["data"]]


def _anls_score(items: Sequence[Item], answers: Sequence[str]) -> dict[str, float]:
    return get_metric("anls")(answers, [it.reference for it in items])


# --- ChartQA --------------------------------------------------------------------------------------


def read_chartqa(root: Path, split: str, images: Path | None) -> list[Item]:
    """``{part}/{part}_{subset}.json`` for split ``{part}_{subset}`` (e.g. ``test/test_human.json``):
    a list of ``{"imgname", "query", "label"}``; images ``{images or ROOT/part/png}/{imgname}``.
    ChartQA has no question id: ``question_id`` is the record's index in the file."""
    part = split.split("_", 1)[0]
    file = require(root / part / f"{split}.json", "ChartQA annotations")
    folder = images or root / part / "png"
    return [Item({"question_id": i}, folder / q["imgname"], short_answer_prompt(q["query"]), q["label"])
            for i, q in enumerate(read_json(file))]


def _relaxed_score(items: Sequence[Item], answers: Sequence[str]) -> dict[str, float]:
    return get_metric("relaxed_accuracy")(answers, [it.reference for it in items])


# --- ScienceQA-IMG --------------------------------------------------------------------------------


def read_scienceqa(root: Path, split: str, images: Path | None) -> list[Item]:
    """The ScienceQA release: ``problems.json`` (pid -> record) and ``pid_splits.json`` (split ->
    pids), in ROOT or ROOT/data/scienceqa; images ``{images or ROOT/images/split or ROOT/split}/
    {pid}/image.png``. Only problems with an image (the IMG subset). ``question_id`` is the pid.

    The question reads ``Context: {hint}\\n{question}`` (no context line when the hint is empty),
    then the options and the instruction of the ``multiple_choice`` task.
    """
    base = first_existing(root / "problems.json", root / "data" / "scienceqa" / "problems.json").parent
    problems = read_json(require(base / "problems.json", "ScienceQA problems.json"))
    pids = read_json(require(base / "pid_splits.json", "ScienceQA pid_splits.json"))[split]
    folder = images or first_existing(root / "images" / split, root / split)
    items = []
    for pid in pids:
        p = problems[pid]
        if not p.get("image"):
            continue
        hint = (p.get("hint") or "").strip()
        question = f"Context: {hint}\n{p['question']}" if hint else p["question"]
        example = Choice(question, tuple(p["choices"]), int(p["answer"]))
        items.append(Item({"question_id": pid}, folder / pid / p["image"],
                          task_prompt("multiple_choice", example), LETTERS[example.answer],
                          meta={"num_choices": len(p["choices"])},
                          answer_prefix=MULTIPLE_CHOICE_ANSWER_PREFIX))
    return items


def _choice_score(items: Sequence[Item], answers: Sequence[str]) -> dict[str, float]:
    return get_metric("multiple_choice_accuracy")(
        answers, [it.reference for it in items], num_choices=[it.meta["num_choices"] for it in items])


# --- registry -------------------------------------------------------------------------------------

_QID = ("question_id",)
for _b in (
    Benchmark("vqav2", read_vqav2, _vqa_score, _QID, ("val2014", "train2014"), "val2014", 10,
              "accuracy", description="VQAv2, VQA accuracy"),
    Benchmark("okvqa", read_okvqa, _vqa_score, _QID, ("val2014", "train2014"), "val2014", 10,
              "accuracy", description="OK-VQA, VQA accuracy"),
    Benchmark("gqa", read_gqa, _exact_score, _QID, ("testdev_balanced", "val_balanced"),
              "testdev_balanced", 10, "accuracy", description="GQA, exact match"),
    Benchmark("textvqa", read_textvqa, _vqa_score, _QID, ("val", "train"), "val", 10, "accuracy",
              description="TextVQA, VQA accuracy (no OCR tokens in the prompt)"),
    Benchmark("vizwiz", read_vizwiz, _vqa_score, _QID, ("val", "train"), "val", 10, "accuracy",
              description="VizWiz, VQA accuracy"),
    Benchmark("docvqa", read_docvqa, _anls_score, _QID, ("val",), "val", 32, "anls",
              description="DocVQA, ANLS"),
    Benchmark("chartqa", read_chartqa, _relaxed_score, _QID, ("test_human", "test_augmented",
              "val_human", "val_augmented"), "test_human", 10, "relaxed_accuracy",
              description="ChartQA, relaxed accuracy"),
    Benchmark("scienceqa", read_scienceqa, _choice_score, _QID, ("test", "val", "minival"), "test", 10,
              "accuracy", description="ScienceQA-IMG, option-letter accuracy"),
):
    register_benchmark(_b)
