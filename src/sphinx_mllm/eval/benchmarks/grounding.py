"""Referring-expression comprehension: RefCOCO, RefCOCO+ and RefCOCOg (umd partition).

Layout: the ``refer`` toolkit's per-dataset folder, ``ROOT/refs(unc).p`` (RefCOCOg:
``refs(umd).p``) and ``ROOT/instances.json``; images are COCO train2014 files in ``--images``,
else ``ROOT/images``, else refer's ``ROOT/../images/mscoco/images/train2014``. The files are read
with the data adapters' helpers (safe pickle loading, COCO image table, ``[x, y, w, h]`` boxes).

One item per referring sentence, keyed by ``ref_id`` + ``sent_id``. Scoring follows SPHINX's
``eval_mm`` REC rule (spec 8.4): the first box of the answer (tasks parser), read in the padded
square, is mapped to original pixels with the image's :class:`ImageFrame` *without clipping*
(SPHINX compares unclipped boxes, and IoU is translation-invariant, so this equals its
padded-square comparison), then Acc@IoU>=0.5 against the annotated box.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from ...data.adapters.coco import as_object, pixel_box, read_images
from ...data.adapters.refcoco import refs_file
from ...data.files import read_json, read_plain_pickle, require
from ...data.layouts import first_existing
from ...data.sample import Skips
from ...tasks import Box, Region, first_box
from ..metrics import get_metric
from .base import Benchmark, Item, register_benchmark, task_prompt


def read_refcoco(root: Path, split: str, images: Path | None) -> list[Item]:
    """Items of ``split``: prompt = the ``rec`` task with the sentence, reference = the pixel box
    of the ref's annotation, frame = the image's size from ``instances.json``."""
    instances_file = require(root / "instances.json", "RefCOCO instances.json")
    data = as_object(read_json(instances_file), instances_file)
    refer_images = root.parent / "images" / "mscoco" / "images" / "train2014"
    folder = images or first_existing(root / "images", refer_images)
    by_id = read_images(data, instances_file, folder, Skips())
    boxes = {a["id"]: a["bbox"] for a in data.get("annotations", [])}
    items = []
    for ref in read_plain_pickle(refs_file(root)):
        if ref["split"] != split:
            continue
        image = by_id[ref["image_id"]]
        box = pixel_box(boxes[ref["ann_id"]])
        for sentence in ref["sentences"]:
            items.append(Item({"ref_id": ref["ref_id"], "sent_id": sentence["sent_id"]}, image.path,
                              task_prompt("rec", Region(sentence["sent"], ())), box, frame=image.frame))
    return items


def answer_box(answer: str, item: Item) -> Box | None:
    """The answer's first box in original pixels (unclipped), or None when it has no 4-number box."""
    box = first_box(answer)
    return None if box is None else item.frame.box_to_pixels(box, clip=False)


def _rec_score(items: Sequence[Item], answers: Sequence[str]) -> dict[str, float]:
    boxes = [answer_box(a, it) for a, it in zip(answers, items)]
    predictions = [None if b is None else (b.x1, b.y1, b.x2, b.y2) for b in boxes]
    references = [(r.x1, r.y1, r.x2, r.y2) for r in (it.reference for it in items)]
    return get_metric("rec_accuracy")(predictions, references)


_IDS = ("ref_id", "sent_id")
for _b in (
    Benchmark("refcoco", read_refcoco, _rec_score, _IDS, ("val", "testA", "testB", "train"), "val",
              30, "acc50", description="RefCOCO (unc), Acc@0.5", drawing="box"),
    Benchmark("refcoco+", read_refcoco, _rec_score, _IDS, ("val", "testA", "testB", "train"), "val",
              30, "acc50", description="RefCOCO+ (unc), Acc@0.5", drawing="box"),
    Benchmark("refcocog", read_refcoco, _rec_score, _IDS, ("val", "test", "train"), "val", 30,
              "acc50", description="RefCOCOg (umd), Acc@0.5", drawing="box"),
):
    register_benchmark(_b)
