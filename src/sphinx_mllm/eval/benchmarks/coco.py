"""COCO-format benchmarks: COCO captions, COCO person keypoints, PubLayNet layout.

Layouts as released: ``ROOT/annotations/captions_{split}.json`` and
``ROOT/annotations/person_keypoints_{split}.json`` with images in ``ROOT/{split}/``; PubLayNet
``ROOT/{split}.json`` with images in ``ROOT/{split}/``. Image sizes come from the files'
``images`` table. Coordinates in answers are read in the padded square (tasks parser) and mapped
to original pixels with :class:`ImageFrame` (unclipped, as REC) before scoring. None of these has
a token budget in SPHINX's eval config; ours are sized for the longest expected answer.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Sequence

from ...data.adapters.coco import as_object, pixel_box, read_images
from ...data.files import read_json, require
from ...data.sample import Skips
from ...tasks import (COCO_KEYPOINTS, Caption, Detections, Keypoints, Pose, parse_detections,
                      parse_keypoints, strip_grounding)
from ..metrics import get_metric
from .base import Benchmark, Item, register_benchmark, task_prompt


def _load(file: Path, folder: Path) -> tuple[dict, dict]:
    data = as_object(read_json(require(file, "COCO annotation file")), file)
    return data, read_images(data, file, folder, Skips())


# --- captions -------------------------------------------------------------------------------------


def read_captions(root: Path, split: str, images: Path | None) -> list[Item]:
    """One item per image with captions (``image_id``); reference = all its captions."""
    data, by_id = _load(root / "annotations" / f"captions_{split}.json", images or root / split)
    captions = defaultdict(list)
    for ann in data["annotations"]:
        captions[ann["image_id"]].append(ann["caption"])
    prompt = task_prompt("short_caption", Caption(""))
    return [Item({"image_id": i}, by_id[i].path, prompt, captions[i], frame=by_id[i].frame)
            for i in by_id if captions[i]]


def _caption_score(items: Sequence[Item], answers: Sequence[str], **options) -> dict[str, float]:
    """``options`` go to the ``caption`` metric (``metrics``, ``tokenizer``); default: official
    PTB tokenizer and all four families (needs Java)."""
    return get_metric("caption")([strip_grounding(a) for a in answers], [it.reference for it in items],
                                 **options)


# --- keypoints ------------------------------------------------------------------------------------


def read_keypoints(root: Path, split: str, images: Path | None) -> list[Item]:
    """One item per non-crowd person with labelled keypoints, keyed by ``image_id`` + ``ann_id``
    (SPHINX's pose prompt names one person's box, so an image with several people asks several
    questions). Reference (pixels): ``{"keypoints": [(x, y, v)] * 17, "bbox": (x1, y1, x2, y2),
    "area"}`` with COCO's segment area, the OKS scale COCO's own evaluation uses."""
    data, by_id = _load(root / "annotations" / f"person_keypoints_{split}.json", images or root / split)
    items = []
    for ann in data["annotations"]:
        if ann.get("iscrowd") or not ann.get("num_keypoints", 1):
            continue
        image = by_id[ann["image_id"]]
        flat = ann["keypoints"]
        points = [tuple(flat[k:k + 3]) for k in range(0, len(flat), 3)]
        if not any(v > 0 for _, _, v in points):
            continue
        box = pixel_box(ann["bbox"])
        prompt = task_prompt("pose", Pose(image.frame.box_to_square(box), Keypoints(())))
        reference = {"keypoints": points, "bbox": (box.x1, box.y1, box.x2, box.y2),
                     "area": float(ann.get("area") or box.area)}
        items.append(Item({"image_id": ann["image_id"], "ann_id": ann["id"]}, image.path, prompt,
                          reference, frame=image.frame))
    return items


def answer_keypoints(answer: str, item: Item) -> list[tuple[float, float] | None]:
    """COCO-17 points of the answer in original pixels (unclipped), None where a name is missing."""
    found = parse_keypoints(answer).as_dict()
    out: list[tuple[float, float] | None] = []
    for name in COCO_KEYPOINTS:
        p = found.get(name)
        q = None if p is None else item.frame.point_to_pixels(p, clip=False)
        out.append(None if q is None else (q.x, q.y))
    return out


def _keypoint_score(items: Sequence[Item], answers: Sequence[str]) -> dict[str, float]:
    """OKS AP over the asked-about persons (top-down with ground-truth boxes) plus PCK@0.1."""
    points = [answer_keypoints(a, it) for a, it in zip(answers, items)]
    truth = [{"image_id": it.ids["image_id"], **it.reference} for it in items]
    predictions = [{"image_id": it.ids["image_id"], "keypoints": p} for it, p in zip(items, points)
                   if any(q is not None for q in p)]
    image_ids = sorted({it.ids["image_id"] for it in items})
    out = get_metric("keypoint_oks_ap")(truth, predictions, image_ids=image_ids)
    out.update(get_metric("pck")([p if any(q is not None for q in p) else None for p in points],
                                 [it.reference for it in items]))
    out["no_keypoints"] = len(items) - len(predictions)
    return out


# --- PubLayNet ------------------------------------------------------------------------------------


def read_publaynet(root: Path, split: str, images: Path | None) -> list[Item]:
    """One item per page with elements (``image_id``); reference = its annotations
    ``{"category_id", "bbox": (x1, y1, x2, y2) pixels, "area", "iscrowd"}``; ``meta["categories"]``
    maps lower-case category names (text, title, list, table, figure) to ids."""
    data, by_id = _load(root / f"{split}.json", images or root / split)
    categories = {c["name"].lower(): c["id"] for c in data["categories"]}
    anns = defaultdict(list)
    for ann in data["annotations"]:
        box = pixel_box(ann["bbox"])
        anns[ann["image_id"]].append({"category_id": ann["category_id"],
                                      "bbox": (box.x1, box.y1, box.x2, box.y2),
                                      "area": float(ann.get("area") or box.area),
                                      "iscrowd": int(ann.get("iscrowd", 0))})
    prompt = task_prompt("layout", Detections(()))
    return [Item({"image_id": i}, by_id[i].path, prompt, anns[i], frame=by_id[i].frame,
                 meta={"categories": categories}) for i in by_id if anns[i]]


def category_id(label: str, categories: dict[str, int]) -> int | None:
    """A detection label -> category id: exact lower-case name, or its singular ("tables"),
    or "text block(s)" -> text; None for anything else."""
    name = label.strip().lower()
    for candidate in (name, name[:-1] if name.endswith("s") else name, name.replace(" block", "")
                      .rstrip("s")):
        if candidate in categories:
            return categories[candidate]
    return None


def _layout_score(items: Sequence[Item], answers: Sequence[str]) -> dict[str, float]:
    """COCO box mAP; predicted boxes keep generation order (all score 1.0, see the metric)."""
    truth, predictions, unknown = [], [], 0
    for item, answer in zip(items, answers):
        image_id = item.ids["image_id"]
        truth += [{"image_id": image_id, **g} for g in item.reference]
        for detection in parse_detections(answer):
            cat = category_id(detection.label, item.meta["categories"])
            if cat is None:
                unknown += len(detection.boxes)
                continue
            for box in detection.boxes:
                b = item.frame.box_to_pixels(box, clip=False)
                predictions.append({"image_id": image_id, "category_id": cat,
                                    "bbox": (b.x1, b.y1, b.x2, b.y2)})
    out = get_metric("detection_map")(truth, predictions, image_ids=[it.ids["image_id"] for it in items])
    out.update(unknown_labels=unknown, n=len(items))
    return out


for _b in (
    Benchmark("coco-captions", read_captions, _caption_score, ("image_id",),
              ("val2014", "val2017", "test2014"), "val2017", 40, "cider", budget_source="ours",
              description="COCO captions, BLEU / METEOR / ROUGE-L / CIDEr"),
    Benchmark("coco-keypoints", read_keypoints, _keypoint_score, ("image_id", "ann_id"),
              ("val2017", "val2014"), "val2017", 384, "map", budget_source="ours",
              description="COCO person keypoints with ground-truth boxes, OKS AP and PCK@0.1",
              drawing="keypoints"),
    Benchmark("publaynet", read_publaynet, _layout_score, ("image_id",), ("val", "train"), "val", 512,
              "map", budget_source="ours", description="PubLayNet layout, box mAP",
              drawing="layout"),
):
    register_benchmark(_b)
