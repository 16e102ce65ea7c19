"""Structured answers: the boxes, points and keypoint sets in an answer, in ORIGINAL image pixels.

Built on the one parser (:func:`.formats.parse`) and the one frame conversion
(:class:`.geometry.ImageFrame`): coordinates the model writes in the normalised padded square are
mapped back to the pixels of the image the user sent (after its EXIF orientation), clamped to the
image, corners ordered.

* every box of a bracket group is one :class:`BoxObject` with the group's phrase as its label
  (detections, grounded phrases, REC answers, layout regions such as ``title`` / ``table``);
* points named after a COCO-17 keypoint are gathered into :class:`KeypointSet`\\s in text order; a
  name seen again starts the next person's set;
* any other point is a :class:`PointObject`.
"""

from __future__ import annotations

from dataclasses import dataclass

from .formats import COCO_KEYPOINTS, parse
from .geometry import Box, ImageFrame, Point


@dataclass(frozen=True)
class BoxObject:
    label: str | None
    box: Box  # original pixels

    def as_json(self) -> dict:
        b = self.box
        return {"type": "box", "label": self.label, "box": _round([b.x1, b.y1, b.x2, b.y2])}


@dataclass(frozen=True)
class PointObject:
    label: str | None
    point: Point  # original pixels

    def as_json(self) -> dict:
        return {"type": "point", "label": self.label, "point": _round([self.point.x, self.point.y])}


@dataclass(frozen=True)
class KeypointSet:
    """One person's named keypoints (original pixels), in COCO order; absent names left out."""

    points: tuple[tuple[str, Point], ...]

    def as_json(self) -> dict:
        return {"type": "keypoints",
                "keypoints": {name: _round([p.x, p.y]) for name, p in self.points}}


AnswerObject = BoxObject | PointObject | KeypointSet


def _round(values: list[float]) -> list[float]:
    return [round(v, 2) for v in values]


def _keypoint_name(phrase: str | None) -> str | None:
    name = (phrase or "").lower().replace("_", " ").strip()
    return name if name in COCO_KEYPOINTS else None


def answer_objects(text: str, frame: ImageFrame) -> list[AnswerObject]:
    """Objects of ``text`` in the pixels of the ``frame.width x frame.height`` original image.

    Boxes and points come in text order; keypoint sets follow, in the order they started. Never
    raises on any text (the parser does not).
    """
    objects: list[AnswerObject] = []
    people: list[dict[str, Point]] = []
    for span in parse(text):
        label = span.phrase or None
        objects += [BoxObject(label, frame.box_to_pixels(b.ordered())) for b in span.boxes]
        name = _keypoint_name(span.phrase)
        for point in span.points:
            pixel = frame.point_to_pixels(point)
            if name is None:
                objects.append(PointObject(label, pixel))
                continue
            if not people or name in people[-1]:
                people.append({})
            people[-1][name] = pixel
    objects += [KeypointSet(tuple((n, p[n]) for n in COCO_KEYPOINTS if n in p)) for p in people]
    return objects


def objects_json(objects: list[AnswerObject]) -> list[dict]:
    """The JSON form used by ``chat --json`` and the API's ``choices[i].objects``."""
    return [o.as_json() for o in objects]


__all__ = ["AnswerObject", "BoxObject", "KeypointSet", "PointObject", "answer_objects",
           "objects_json"]
