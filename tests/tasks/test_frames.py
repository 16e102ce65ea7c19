"""Frames: original pixels <-> normalised padded square, against processing.pad_to_square."""

import random

import numpy as np
import pytest
from PIL import Image

from sphinx_mllm.processing import pad_to_square
from sphinx_mllm.tasks import Box, ImageFrame, Point


def test_worked_example_wide_image():
    frame = ImageFrame(640, 480)  # side 640, padding (640 - 480) // 2 = 80 px on top
    assert frame.offset == (0, 80)
    square = frame.box_to_square(Box(64, 0, 320, 480))
    assert square == Box(0.1, 80 / 640, 0.5, 560 / 640)
    assert frame.box_to_pixels(Box(0.1, 0.125, 0.5, 0.875)) == Box(64, 0, 320, 480)


def test_clipping_to_image():
    frame = ImageFrame(100, 200)  # 50 px of padding left and right
    assert frame.box_to_pixels(Box(0.0, -0.1, 1.0, 1.2)) == Box(0, 0, 100, 200)
    assert frame.box_to_square(Box(-10, -10, 150, 250)) == Box(0.25, 0.0, 0.75, 1.0)
    assert frame.point_to_pixels(Point(0.0, 0.5), clip=False) == Point(-50, 100)


def test_offset_matches_pad_to_square():
    for w, h in [(7, 3), (3, 8), (5, 5), (10, 1)]:
        image = Image.new("RGB", (w, h), (255, 255, 255))
        square = np.asarray(pad_to_square(image))
        ys, xs = np.nonzero((square == 255).all(-1))
        frame = ImageFrame(w, h)
        box = frame.box_to_square(Box(0, 0, w, h))
        side = frame.side
        assert (xs.min(), ys.min()) == (round(box.x1 * side), round(box.y1 * side))
        assert (xs.max() + 1, ys.max() + 1) == (round(box.x2 * side), round(box.y2 * side))


def test_round_trip_property_any_aspect_ratio():
    rng = random.Random(0)
    for _ in range(1000):
        w, h = rng.randint(1, 5000), rng.randint(1, 5000)
        xs = sorted(rng.uniform(0, w) for _ in range(2))
        ys = sorted(rng.uniform(0, h) for _ in range(2))
        box = Box(xs[0], ys[0], xs[1], ys[1])
        frame = ImageFrame(w, h)
        square = frame.box_to_square(box)
        assert all(0 <= v <= 1 for v in (square.x1, square.y1, square.x2, square.y2))
        back = frame.box_to_pixels(square)
        for a, b in zip((box.x1, box.y1, box.x2, box.y2), (back.x1, back.y1, back.x2, back.y2)):
            assert abs(a - b) <= 0.5


def test_rejects_empty_image():
    with pytest.raises(ValueError):
        ImageFrame(0, 10)
