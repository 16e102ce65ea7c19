"""Box overlap and referring-expression comprehension (REC) accuracy.

Boxes here are ``(x1, y1, x2, y2)`` in pixels of one frame (both sides of a comparison in the
same frame), continuous coordinates: width = x2 - x1, no "+1". Turning the model's text into a
box, and mapping it out of the padded-square frame, is ``sphinx_mllm.tasks``' job.
"""

from __future__ import annotations

from typing import Sequence

from ...tasks import geometry
from .registry import check_paired, percent, register

Box = Sequence[float]


def box_area(box: Box) -> float:
    """Area of an (x1, y1, x2, y2) box; 0 for a degenerate one (x2 <= x1 or y2 <= y1)."""
    return geometry.Box(*box).area


def box_iou(a: Box, b: Box) -> float:
    """Intersection over union of two (x1, y1, x2, y2) boxes, in [0, 1]; 0 when the union is
    empty (two degenerate boxes). The geometry is ``sphinx_mllm.tasks``' (one source of truth)."""
    if len(a) != 4 or len(b) != 4:
        raise ValueError(f"boxes need 4 numbers, got {len(a)} and {len(b)}")
    return geometry.Box(*a).iou(geometry.Box(*b))


@register("rec_accuracy")
def rec_accuracy(
    predictions: Sequence[Box | None], references: Sequence[Box], threshold: float = 0.5
) -> dict[str, float]:
    """REC Acc@IoU>=threshold (RefCOCO / RefCOCO+ / RefCOCOg).

    ``predictions[i]`` is the parsed box for referring expression ``i``, or None when the
    answer held no well-formed box (counted wrong, as SPHINX's script does by scoring a zero
    box). Returns ``acc50`` (share with IoU >= threshold, x100; the key keeps its name for other
    thresholds), ``mean_iou`` (x100, malformed = 0), ``malformed`` and ``n``.

    IoU does not change under translation, so scoring in the original image frame gives the same
    result as SPHINX's scoring in the padded-square frame, unless boxes were clipped.
    """
    n = check_paired(predictions, references)
    hits = malformed = 0
    iou_sum = 0.0
    for pred, ref in zip(predictions, references):
        if pred is None or len(pred) != 4:
            malformed += 1
            continue
        iou = box_iou(pred, ref)
        iou_sum += iou
        hits += iou >= threshold
    return {"acc50": percent(hits, n), "mean_iou": percent(iou_sum, n), "malformed": malformed, "n": n}
