"""Yes/no benchmarks: POPE (three splits) and MME (14 subtasks), in their released layouts.

Neither has a prompt in SPHINX's repository (spec 11.1: its POPE numbers came from elsewhere);
both use the short-answer instruction of the ``vqa`` task, as LLaVA's evaluation does.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

from ...data.files import require
from ...data.layouts import first_existing
from ..metrics import MME_COGNITION, MME_PERCEPTION, get_metric
from .base import Benchmark, Item, register_benchmark
from .vqa import short_answer_prompt

POPE_SPLITS = ("random", "popular", "adversarial")


def read_pope(root: Path, split: str, images: Path | None) -> list[Item]:
    """``coco_pope_{split}.json`` in ROOT or ROOT/coco (POPE's ``output/coco``): JSON lines
    ``{"question_id", "image", "text", "label"}``; images are COCO val2014 files
    ``{images or ROOT/val2014}/{image}``."""
    name = f"coco_pope_{split}.json"
    file = require(first_existing(root / name, root / "coco" / name), "POPE questions")
    folder = images or root / "val2014"
    items = []
    with open(file, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                q = json.loads(line)
                items.append(Item({"question_id": q["question_id"]}, folder / q["image"],
                                  short_answer_prompt(q["text"]), q["label"]))
    return items


def _pope_score(items: Sequence[Item], answers: Sequence[str],
                unparsable_as: str = "yes") -> dict[str, float]:
    return get_metric("pope")(answers, [it.reference for it in items], unparsable_as=unparsable_as)


_IMAGE_SUFFIXES = (".jpg", ".png", ".jpeg")


def _mme_pairs(task_dir: Path) -> list[tuple[Path, Path]]:
    """(question file, image file) pairs of one subtask. Five subtasks (artwork, celebrity,
    landmark, posters, scene) keep ``images/`` and ``questions_answers_YN/`` folders; the others
    keep ``NAME.txt`` next to ``NAME.jpg``/``NAME.png``."""
    qa_dir = task_dir / "questions_answers_YN"
    image_dir = task_dir / "images" if qa_dir.is_dir() else task_dir
    qa_dir = qa_dir if qa_dir.is_dir() else task_dir
    pairs = []
    for txt in sorted(qa_dir.glob("*.txt")):
        image = next((image_dir / (txt.stem + s) for s in _IMAGE_SUFFIXES
                      if (image_dir / (txt.stem + s)).is_file()), None)
        if image is None:
            raise FileNotFoundError(f"MME: no image for {txt} in {image_dir}")
        pairs.append((txt, image))
    return pairs


def read_mme(root: Path, split: str, images: Path | None) -> list[Item]:
    """``ROOT/{subtask}/`` for each of MME's 14 subtask folders (``MME_Benchmark_release_version``);
    each question file holds lines ``question<TAB>Yes|No`` (two per image). ``question_id`` is
    ``{subtask}/{image file}/{line index}``. Missing subtask folders are skipped (a partial
    download scores the subtasks present); ``images`` is ignored (images sit in the folders)."""
    items = []
    present = [t for t in (*MME_PERCEPTION, *MME_COGNITION) if (root / t).is_dir()]
    if not present:
        raise FileNotFoundError(f"MME: no subtask folder (e.g. {root / 'existence'}) in {root}")
    for task in present:
        for txt, image in _mme_pairs(root / task):
            lines = [ln for ln in txt.read_text(encoding="utf-8").splitlines() if ln.strip()]
            for index, line in enumerate(lines):
                question, answer = line.rsplit("\t", 1)
                items.append(Item({"question_id": f"{task}/{image.name}/{index}"}, image,
                                  short_answer_prompt(question), answer.strip(),
                                  meta={"subtask": task, "image_id": f"{task}/{image.name}"}))
    return items


def _mme_score(items: Sequence[Item], answers: Sequence[str]) -> dict[str, float]:
    # The official parser reads the first 4 characters as given; decoded text may start with
    # the space the tokenizer put before the first word.
    return get_metric("mme")([a.lstrip() for a in answers], [it.reference for it in items],
                             subtasks=[it.meta["subtask"] for it in items],
                             image_ids=[it.meta["image_id"] for it in items])


for _b in (
    Benchmark("pope", read_pope, _pope_score, ("question_id",), POPE_SPLITS, "random", 10, "f1",
              budget_source="ours", description="POPE (COCO), yes-positive F1 / accuracy"),
    Benchmark("mme", read_mme, _mme_score, ("question_id",), ("test",), "test", 10, "perception",
              description="MME, perception and cognition scores"),
):
    register_benchmark(_b)
