"""Detection / layout mAP and keypoint OKS AP through pycocotools, plus PCK.

Inputs are in-memory records, no COCO json files: boxes are ``(x1, y1, x2, y2)`` pixels (this
module converts to COCO's ``[x, y, w, h]``), keypoints are one entry per keypoint in the
dataset's order. pycocotools is imported lazily so the rest of the package works without it.
"""

from __future__ import annotations

import contextlib
import io
import math
from typing import Any, Hashable, Mapping, Sequence

import numpy as np

from .boxes import Box
from .registry import check_paired, percent, register

_BBOX_KEYS = (
    "map", "map_50", "map_75", "map_small", "map_medium", "map_large",
    "mar_1", "mar_10", "mar_100", "mar_small", "mar_medium", "mar_large",
)
_KEYPOINT_KEYS = (
    "map", "map_50", "map_75", "map_medium", "map_large",
    "mar", "mar_50", "mar_75", "mar_medium", "mar_large",
)


def _xywh(box: Box) -> list[float]:
    x1, y1, x2, y2 = (float(v) for v in box)
    return [x1, y1, x2 - x1, y2 - y1]


def _run_cocoeval(
    gt_anns: list[dict], dt_anns: list[dict], image_ids: list[Hashable], category_ids: list[Hashable],
    iou_type: str, keys: Sequence[str], kpt_sigmas: Sequence[float] | None = None,
) -> dict[str, float]:
    try:
        from pycocotools.coco import COCO
        from pycocotools.cocoeval import COCOeval
    except ImportError as err:
        msg = "detection / keypoint metrics need pycocotools: pip install pycocotools"
        raise ImportError(msg) from err
    images = [{"id": i} for i in image_ids]
    categories = [{"id": c} for c in category_ids]
    gt, dt = COCO(), COCO()
    gt.dataset = {"images": images, "categories": categories, "annotations": gt_anns}
    dt.dataset = {"images": images, "categories": categories, "annotations": dt_anns}
    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools reports by printing
        gt.createIndex()
        dt.createIndex()
        evaluator = COCOeval(gt, dt, iou_type)
        if kpt_sigmas is not None:
            evaluator.params.kpt_oks_sigmas = np.asarray(kpt_sigmas, dtype=float)
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    # pycocotools writes -1 where a value is undefined (no ground truth in that size range).
    return {k: (100.0 * float(v) if v >= 0 else math.nan) for k, v in zip(keys, evaluator.stats)}


def _image_and_category_ids(
    ground_truth: Sequence[Mapping[str, Any]], predictions: Sequence[Mapping[str, Any]],
    image_ids: Sequence[Hashable] | None,
) -> tuple[list, list]:
    records = [*ground_truth, *predictions]
    images = list(image_ids) if image_ids is not None else sorted({r["image_id"] for r in records})
    categories = sorted({r.get("category_id", 1) for r in records})
    return images, categories


@register("detection_map")
def detection_map(
    ground_truth: Sequence[Mapping[str, Any]],
    predictions: Sequence[Mapping[str, Any]],
    image_ids: Sequence[Hashable] | None = None,
) -> dict[str, float]:
    """COCO box mAP (object detection, PubLayNet layout), x100.

    ``ground_truth``: ``{"image_id", "category_id", "bbox": (x1, y1, x2, y2)}`` with optional
    ``"iscrowd"`` (default 0) and ``"area"`` (default: box area; COCO's own files carry the
    segment area, which only moves objects between size ranges). ``predictions``: the same plus
    optional ``"score"``; SPHINX emits no scores, so the default 1.0 ties them all and
    pycocotools' stable sort then ranks boxes in the order given. ``image_ids`` lists every
    evaluated image, including ones without objects (default: those named in either list).

    Returns ``map`` (AP@[.50:.95]), ``map_50``, ``map_75``, ``map_small|medium|large``,
    ``mar_1|10|100``, ``mar_small|medium|large``; NaN where undefined (pycocotools' -1).
    """
    images, categories = _image_and_category_ids(ground_truth, predictions, image_ids)
    gt_anns = []
    for k, g in enumerate(ground_truth, 1):
        bbox = _xywh(g["bbox"])
        gt_anns.append({
            "id": k, "image_id": g["image_id"], "category_id": g.get("category_id", 1), "bbox": bbox,
            "area": float(g.get("area", bbox[2] * bbox[3])), "iscrowd": int(g.get("iscrowd", 0)),
        })
    dt_anns = []
    for k, d in enumerate(predictions, 1):
        bbox = _xywh(d["bbox"])
        dt_anns.append({
            "id": k, "image_id": d["image_id"], "category_id": d.get("category_id", 1), "bbox": bbox,
            "area": bbox[2] * bbox[3], "score": float(d.get("score", 1.0)), "iscrowd": 0,
        })
    return _run_cocoeval(gt_anns, dt_anns, images, categories, "bbox", _BBOX_KEYS)


def _flat_keypoints(points: Sequence[Sequence[float] | None]) -> list[float]:
    """(x, y[, v or score]) per keypoint, None for a missing one -> COCO's flat [x, y, v, ...]."""
    flat: list[float] = []
    for p in points:
        if p is None:
            flat += [0.0, 0.0, 0.0]
        else:
            flat += [float(p[0]), float(p[1]), float(p[2]) if len(p) > 2 else 1.0]
    return flat


@register("keypoint_oks_ap")
def keypoint_oks_ap(
    ground_truth: Sequence[Mapping[str, Any]],
    predictions: Sequence[Mapping[str, Any]],
    image_ids: Sequence[Hashable] | None = None,
    sigmas: Sequence[float] | None = None,
) -> dict[str, float]:
    """COCO keypoint AP over OKS thresholds .50:.95, x100.

    ``ground_truth``: one record per person, ``{"image_id", "keypoints": [(x, y, v), ...],
    "bbox": (x1, y1, x2, y2)}`` (v: 0 unlabelled, 1 labelled but hidden, 2 visible), optional
    ``"area"``, the OKS scale (default: box area; COCO uses the segment area, which is smaller,
    so the default is a little more lenient). ``predictions``: ``{"image_id", "keypoints":
    [(x, y) or (x, y, score) or None, ...], "score"}`` (score default 1.0); None keypoints are
    placed at (0, 0) and so score nothing. ``sigmas``: per-keypoint OKS constants, default
    COCO's 17 (required for other skeletons).

    Returns ``map``, ``map_50``, ``map_75``, ``map_medium``, ``map_large`` and the matching
    ``mar*`` (20 detections per image, as COCO); NaN where undefined.
    """
    if sigmas is None and any(len(g["keypoints"]) != 17 for g in ground_truth):
        raise ValueError("keypoints other than COCO's 17 need explicit OKS sigmas")
    images, _ = _image_and_category_ids(ground_truth, predictions, image_ids)
    gt_anns = []
    for k, g in enumerate(ground_truth, 1):
        flat = _flat_keypoints(g["keypoints"])
        bbox = _xywh(g["bbox"])
        gt_anns.append({
            "id": k, "image_id": g["image_id"], "category_id": 1, "bbox": bbox, "keypoints": flat,
            "num_keypoints": sum(v > 0 for v in flat[2::3]), "iscrowd": int(g.get("iscrowd", 0)),
            "area": float(g.get("area", bbox[2] * bbox[3])),
        })
    dt_anns = []
    for k, d in enumerate(predictions, 1):
        flat = _flat_keypoints(d["keypoints"])
        xs, ys = flat[0::3], flat[1::3]
        # Same box / area pycocotools' loadRes derives for keypoint results: the points' extent.
        x0, x1, y0, y1 = min(xs), max(xs), min(ys), max(ys)
        dt_anns.append({
            "id": k, "image_id": d["image_id"], "category_id": 1, "keypoints": flat,
            "score": float(d.get("score", 1.0)), "bbox": [x0, y0, x1 - x0, y1 - y0],
            "area": (x1 - x0) * (y1 - y0), "iscrowd": 0,
        })
    return _run_cocoeval(gt_anns, dt_anns, images, [1], "keypoints", _KEYPOINT_KEYS, sigmas)


@register("pck")
def pck(
    predictions: Sequence[Sequence[Sequence[float] | None] | None],
    references: Sequence[Mapping[str, Any]],
    threshold: float = 0.1,
) -> dict[str, float]:
    """PCK@threshold normalised by box size, x100.

    ``references[i]``: ``{"keypoints": [(x, y, v), ...], "bbox": (x1, y1, x2, y2)}`` for one
    person; ``predictions[i]``: its predicted ``(x, y)`` per keypoint (None for a keypoint, or
    for the whole person, when the answer had none). A labelled keypoint (v > 0) is correct when
    its predicted point lies within ``threshold * max(box width, box height)`` pixels
    (inclusive). The default 0.1 is a choice (mmpose's bbox-normalised PCK defaults to 0.05).
    ``pck`` pools all labelled keypoints of all persons; also ``n_keypoints``, ``n``.
    """
    n = check_paired(predictions, references)
    correct = counted = 0
    for pred, ref in zip(predictions, references):
        x1, y1, x2, y2 = ref["bbox"]
        radius = threshold * max(x2 - x1, y2 - y1)
        points = list(pred) if pred is not None else [None] * len(ref["keypoints"])
        if len(points) != len(ref["keypoints"]):
            expected = len(ref["keypoints"])
            raise ValueError(f"{len(points)} predicted keypoints, {expected} in the reference")
        for p, (gx, gy, v) in zip(points, ref["keypoints"]):
            if v <= 0:
                continue
            counted += 1
            correct += p is not None and math.hypot(p[0] - gx, p[1] - gy) <= radius
    return {"pck": percent(correct, counted), "n_keypoints": counted, "n": n}
