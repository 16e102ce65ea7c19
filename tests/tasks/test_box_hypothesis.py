"""The acceptance properties again, with hypothesis searching for counter-examples."""

import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import given, settings, strategies as st  # noqa: E402

from sphinx_mllm.tasks import Box, ImageFrame, format_boxes, parse, strip_grounding  # noqa: E402

unit = st.floats(0, 1, allow_nan=False)


@settings(max_examples=200, deadline=None, derandomize=True)
@given(st.lists(st.tuples(unit, unit, unit, unit), min_size=1, max_size=5))
def test_box_text_round_trip(coords):
    boxes = [Box(*c) for c in coords]
    text = format_boxes(boxes)
    (span,) = parse(text)
    assert format_boxes(span.boxes) == text
    assert all(abs(a - b) <= 0.005 + 1e-12 for x, y in zip(boxes, span.boxes)
               for a, b in zip((x.x1, x.y1, x.x2, x.y2), (y.x1, y.y1, y.x2, y.y2)))


@settings(max_examples=200, deadline=None, derandomize=True)
@given(st.integers(1, 10000), st.integers(1, 10000), unit, unit, unit, unit)
def test_frame_round_trip(w, h, a, b, c, d):
    box = Box(min(a, c) * w, min(b, d) * h, max(a, c) * w, max(b, d) * h)
    frame = ImageFrame(w, h)
    back = frame.box_to_pixels(frame.box_to_square(box))
    assert max(abs(box.x1 - back.x1), abs(box.y1 - back.y1),
               abs(box.x2 - back.x2), abs(box.y2 - back.y2)) <= 0.5


@settings(max_examples=300, deadline=None, derandomize=True)
@given(st.text())
def test_parser_never_raises(text):
    parse(text)
    strip_grounding(text)
