"""SPHINX's structured answer text: the one writer and the one parser for boxes and keypoints.

Format (spec 8.4), all coordinates normalised to the padded square (see :mod:`.geometry`):

* a box is ``[x1,y1,x2,y2]`` with two decimals in [0, 1]; several boxes of one phrase share one
  bracket, ``;``-separated: ``[0.10,0.20,0.30,0.40;0.50,0.60,0.70,0.80]``;
* a grounded phrase is ``<p>phrase</p> [boxes]``; a keypoint is ``<p>left eye</p> [x,y]``;
* several grounded items are joined by one space (our choice; the spec does not fix a separator).

The parser accepts more than the writer emits, because model text is messy: spaces anywhere,
integers (``0``, ``1``), a missing ``</p>``, an unclosed bracket at the end of a truncated answer,
bare brackets without a phrase. It never raises on any input string. No other module may parse box
text; import :func:`parse` (or a helper built on it) instead.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .geometry import Box, Point

DECIMALS = 2

COCO_KEYPOINTS = (
    "nose", "left eye", "right eye", "left ear", "right ear",
    "left shoulder", "right shoulder", "left elbow", "right elbow", "left wrist", "right wrist",
    "left hip", "right hip", "left knee", "right knee", "left ankle", "right ankle",
)
"""COCO-17 keypoint names in COCO order, written with spaces as SPHINX emits them."""

COCO_SKELETON = tuple((COCO_KEYPOINTS[a - 1], COCO_KEYPOINTS[b - 1]) for a, b in (
    (16, 14), (14, 12), (17, 15), (15, 13), (12, 13), (6, 12), (7, 13), (6, 7), (6, 8), (7, 9),
    (8, 10), (9, 11), (2, 3), (1, 2), (1, 3), (2, 4), (3, 5), (4, 6), (5, 7),
))
"""Limb pairs by name (COCO's 1-based ``skeleton`` list), for drawing."""


@dataclass(frozen=True)
class Detection:
    """One label and its boxes (normalised padded square); the unit of detection answers."""

    label: str
    boxes: tuple[Box, ...]


@dataclass(frozen=True)
class Keypoints:
    """Named points of one person (normalised padded square), in COCO order; unlabelled ones absent."""

    points: tuple[tuple[str, Point], ...]

    def as_dict(self) -> dict[str, Point]:
        return dict(self.points)


@dataclass(frozen=True)
class Span:
    """One bracket group found in model text, with the phrase right before it (None if bare).

    ``start``/``end`` are character offsets of the whole match (phrase tags included) in the text.
    """

    phrase: str | None
    boxes: tuple[Box, ...]
    points: tuple[Point, ...]
    start: int
    end: int


# --- writing -----------------------------------------------------------------------------------


def _num(value: float) -> str:
    return f"{min(max(value, 0.0), 1.0):.{DECIMALS}f}"


def coordinate_texts() -> list[str]:
    """Every coordinate text the formats can write, in order: ``0.00``, ``0.01``, ..., ``1.00``
    (a tokenizer may make each one piece: ``toy.tokenizer``)."""
    scale = 10 ** DECIMALS
    return [_num(i / scale) for i in range(scale + 1)]


def _clean_phrase(phrase: str) -> str:
    """Phrases may not contain the markup characters, or the parser could not find them again."""
    return phrase.replace("[", "(").replace("]", ")").replace("<", "").replace(">", "").strip()


def box_body(box: Box) -> str:
    return ",".join(_num(v) for v in (box.x1, box.y1, box.x2, box.y2))


def format_boxes(boxes: tuple[Box, ...] | list[Box]) -> str:
    """``[x1,y1,x2,y2;...]``; coordinates are clamped to [0, 1] and written with two decimals."""
    return "[" + ";".join(box_body(b) for b in boxes) + "]"


def format_box(box: Box) -> str:
    return format_boxes([box])


def format_point(point: Point) -> str:
    return f"[{_num(point.x)},{_num(point.y)}]"


def ground(phrase: str, boxes: tuple[Box, ...] | list[Box]) -> str:
    """``<p>phrase</p> [boxes]``."""
    return f"<p>{_clean_phrase(phrase)}</p> {format_boxes(boxes)}"


def format_detections(detections: tuple[Detection, ...] | list[Detection]) -> str:
    """Each label once with all its boxes; ``"None"`` when there is nothing to report (our choice)."""
    if not detections:
        return "None"
    return " ".join(ground(d.label, d.boxes) for d in detections)


def format_keypoints(keypoints: Keypoints) -> str:
    """``<p>nose</p> [x,y] <p>left eye</p> [x,y] ...``; ``"None"`` when no point is labelled."""
    if not keypoints.points:
        return "None"
    return " ".join(f"<p>{_clean_phrase(n)}</p> {format_point(p)}" for n, p in keypoints.points)


# --- reading -----------------------------------------------------------------------------------

# An optional "<p>phrase" (closing tag optional) right before a bracket, then the bracket body up
# to "]" or, for a truncated answer, the end of the text. Bodies never contain brackets, so a stray
# "[" restarts the search instead of swallowing the rest of the answer.
_GROUP = re.compile(r"(?:<p>(?P<phrase>[^<\[\]]*?)\s*(?:</p>)?\s*)?\[(?P<body>[^\[\]]*)(?:\]|$)")
_NUMBER = re.compile(r"-?(?:\d+(?:\.\d*)?|\.\d+)")


def _coordinates(part: str) -> Box | Point | None:
    values = [float(v) for v in _NUMBER.findall(part)]
    if len(values) == 4:
        return Box(*values)
    if len(values) == 2:
        return Point(*values)
    return None


def parse(text: str) -> list[Span]:
    """Every bracket group holding at least one 4-number box or 2-number point, in text order.

    Within a bracket, ``;`` separates items; an item with any other count of numbers (e.g. the cut
    tail of a truncated answer) is dropped. Values are returned as written, not clipped.
    """
    if not isinstance(text, str):
        return []
    spans = []
    for match in _GROUP.finditer(text):
        items = [_coordinates(part) for part in match["body"].split(";")]
        boxes = tuple(i for i in items if isinstance(i, Box))
        points = tuple(i for i in items if isinstance(i, Point))
        if boxes or points:
            phrase = match["phrase"].strip() if match["phrase"] is not None else None
            spans.append(Span(phrase, boxes, points, match.start(), match.end()))
    return spans


def parse_boxes(text: str) -> list[Box]:
    """All boxes in the text, in order, ignoring phrases."""
    return [b for span in parse(text) for b in span.boxes]


def first_box(text: str) -> Box | None:
    """The first box of the answer (what REC evaluation scores), or None."""
    boxes = parse_boxes(text)
    return boxes[0] if boxes else None


def parse_detections(text: str) -> list[Detection]:
    """Grounded boxes as detections; a bare bracket gets the label ``""``."""
    return [Detection(s.phrase or "", s.boxes) for s in parse(text) if s.boxes]


def parse_keypoints(text: str) -> Keypoints:
    """Points whose phrase is a COCO-17 name (case and ``_`` tolerant); first occurrence wins."""
    found: dict[str, Point] = {}
    for span in parse(text):
        name = (span.phrase or "").lower().replace("_", " ").strip()
        if name in COCO_KEYPOINTS and span.points and name not in found:
            found[name] = span.points[0]
    return Keypoints(tuple((n, found[n]) for n in COCO_KEYPOINTS if n in found))


def strip_grounding(text: str) -> str:
    """Model text without boxes and ``<p>``/``</p>`` tags, phrases kept (for caption metrics)."""
    if not isinstance(text, str):
        return ""
    out, last = [], 0
    for span in parse(text):
        out.append(text[last:span.start])
        if span.phrase:
            out.append(span.phrase)
        last = span.end
    out.append(text[last:])
    plain = "".join(out).replace("<p>", "").replace("</p>", "")
    return " ".join(plain.split())
