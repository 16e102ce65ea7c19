"""Boxes, points and the two frames they live in.

SPHINX reads and writes coordinates in the *padded-square* frame: the original image centred on a
square canvas of side ``max(W, H)`` (offset ``(long - short) // 2`` on the short axis, exactly as
:func:`sphinx_mllm.processing.pad_to_square` pastes it), normalised to [0, 1]. Datasets and users
speak *pixels* of the original image (continuous edge coordinates, COCO style: a box covering the
whole image is ``(0, 0, W, H)``). :class:`ImageFrame` converts between the two, in both directions.

``Box`` and ``Point`` carry no frame themselves; every function that takes or returns one says which
frame it means.
"""

from __future__ import annotations

from dataclasses import dataclass


def _clamp(value: float, low: float, high: float) -> float:
    return min(max(value, low), high)


@dataclass(frozen=True)
class Point:
    x: float
    y: float


@dataclass(frozen=True)
class Box:
    """Corners ``(x1, y1)`` top-left and ``(x2, y2)`` bottom-right, in whatever frame the caller says."""

    x1: float
    y1: float
    x2: float
    y2: float

    @classmethod
    def from_xywh(cls, x: float, y: float, w: float, h: float) -> Box:
        """From COCO's ``[x, y, width, height]``."""
        return cls(x, y, x + w, y + h)

    @property
    def width(self) -> float:
        return self.x2 - self.x1

    @property
    def height(self) -> float:
        return self.y2 - self.y1

    @property
    def area(self) -> float:
        return max(self.width, 0.0) * max(self.height, 0.0)

    def ordered(self) -> Box:
        """The same box with ``x1 <= x2`` and ``y1 <= y2`` (models sometimes swap corners)."""
        return Box(min(self.x1, self.x2), min(self.y1, self.y2),
                   max(self.x1, self.x2), max(self.y1, self.y2))

    def clipped(self, width: float = 1.0, height: float = 1.0) -> Box:
        """Clamp to ``[0, width] x [0, height]`` (the defaults clip a normalised box to [0, 1])."""
        return Box(_clamp(self.x1, 0, width), _clamp(self.y1, 0, height),
                   _clamp(self.x2, 0, width), _clamp(self.y2, 0, height))

    def iou(self, other: Box) -> float:
        """Intersection over union; 0 when both are empty."""
        inter = Box(max(self.x1, other.x1), max(self.y1, other.y1),
                    min(self.x2, other.x2), min(self.y2, other.y2)).area
        union = self.area + other.area - inter
        return inter / union if union > 0 else 0.0


@dataclass(frozen=True)
class ImageFrame:
    """An original image of ``width x height`` pixels and the padded square the model sees."""

    width: int
    height: int

    def __post_init__(self) -> None:
        if self.width <= 0 or self.height <= 0:
            raise ValueError(f"image size must be positive, got {self.width}x{self.height}")

    @property
    def side(self) -> int:
        """Side of the padded square, in original pixels."""
        return max(self.width, self.height)

    @property
    def offset(self) -> tuple[int, int]:
        """Where the original's top-left corner sits on the square, in pixels (as pad_to_square)."""
        return (self.side - self.width) // 2, (self.side - self.height) // 2

    def point_to_square(self, point: Point, clip: bool = True) -> Point:
        """Original pixels -> normalised padded square; ``clip`` first clamps to the image."""
        x, y = point.x, point.y
        if clip:
            x, y = _clamp(x, 0, self.width), _clamp(y, 0, self.height)
        dx, dy = self.offset
        return Point((x + dx) / self.side, (y + dy) / self.side)

    def point_to_pixels(self, point: Point, clip: bool = True) -> Point:
        """Normalised padded square -> original pixels; ``clip`` clamps the result to the image."""
        dx, dy = self.offset
        x, y = point.x * self.side - dx, point.y * self.side - dy
        if clip:
            x, y = _clamp(x, 0, self.width), _clamp(y, 0, self.height)
        return Point(x, y)

    def box_to_square(self, box: Box, clip: bool = True) -> Box:
        """Original pixels -> normalised padded square (see :meth:`point_to_square`)."""
        a = self.point_to_square(Point(box.x1, box.y1), clip)
        b = self.point_to_square(Point(box.x2, box.y2), clip)
        return Box(a.x, a.y, b.x, b.y)

    def box_to_pixels(self, box: Box, clip: bool = True) -> Box:
        """Normalised padded square -> original pixels (see :meth:`point_to_pixels`)."""
        a = self.point_to_pixels(Point(box.x1, box.y1), clip)
        b = self.point_to_pixels(Point(box.x2, box.y2), clip)
        return Box(a.x, a.y, b.x, b.y)
