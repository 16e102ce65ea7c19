"""Contract tests for the box / keypoint text: writer output, tolerant parser, round trips."""

import random
import string

import pytest

from sphinx_mllm.tasks import (COCO_KEYPOINTS, Box, Detection, Keypoints, Point, first_box,
                               format_box, format_boxes, format_detections, format_keypoints,
                               ground, parse, parse_boxes, parse_detections, parse_keypoints,
                               strip_grounding)
from sphinx_mllm.tasks.formats import coordinate_texts


def test_writer_uses_two_decimals_clamped_and_semicolons():
    boxes = [Box(0.1, 0.2, 0.3, 0.4), Box(-0.5, 0.555, 1.7, 0.999)]
    assert format_box(boxes[0]) == "[0.10,0.20,0.30,0.40]"
    assert format_boxes(boxes) == "[0.10,0.20,0.30,0.40;0.00,0.56,1.00,1.00]"
    assert ground("blue backpack", boxes[:1]) == "<p>blue backpack</p> [0.10,0.20,0.30,0.40]"


def test_coordinate_texts_are_every_value_the_writer_can_write():
    texts = coordinate_texts()
    assert len(texts) == 101 and texts[:2] == ["0.00", "0.01"] and texts[-1] == "1.00"
    rng = random.Random(0)
    for _ in range(200):
        body = format_box(Box(*(rng.uniform(-0.2, 1.2) for _ in range(4))))[1:-1]
        assert set(body.split(",")) <= set(texts)


def test_detections_and_keypoints_text():
    dets = [Detection("person", (Box(0, 0, 0.5, 0.5), Box(0.5, 0.5, 1, 1))),
            Detection("dog", (Box(0.1, 0.1, 0.2, 0.2),))]
    text = format_detections(dets)
    assert text == ("<p>person</p> [0.00,0.00,0.50,0.50;0.50,0.50,1.00,1.00] "
                    "<p>dog</p> [0.10,0.10,0.20,0.20]")
    assert parse_detections(text) == dets
    assert format_detections([]) == "None"
    kps = Keypoints((("nose", Point(0.5, 0.25)), ("left eye", Point(0.52, 0.2))))
    assert format_keypoints(kps) == "<p>nose</p> [0.50,0.25] <p>left eye</p> [0.52,0.20]"
    assert parse_keypoints(format_keypoints(kps)) == kps


@pytest.mark.parametrize("text, phrase, boxes", [
    ("<p>dog</p>[0.1,0.2,0.3,0.4]", "dog", [Box(0.1, 0.2, 0.3, 0.4)]),
    ("<p> dog </p>  [ 0.1 , 0.2, 0.3 ,0.4 ]", "dog", [Box(0.1, 0.2, 0.3, 0.4)]),
    ("<p>dog [0,0,1,1]", "dog", [Box(0, 0, 1, 1)]),  # integers, missing </p>
    ("It is here: [0.10,0.20,0.30,0.40", None, [Box(0.1, 0.2, 0.3, 0.4)]),  # truncated
    ("<p>cats</p> [0.1,0.2,0.3,0.4;0.5,0.6,0.7", "cats", [Box(0.1, 0.2, 0.3, 0.4)]),  # cut tail
    ("[.5,0.5,0.75,1.]", None, [Box(0.5, 0.5, 0.75, 1.0)]),
])
def test_parser_tolerates_what_models_emit(text, phrase, boxes):
    spans = parse(text)
    assert len(spans) == 1
    assert spans[0].phrase == phrase
    assert list(spans[0].boxes) == boxes


def test_several_phrases_and_ignored_brackets():
    text = ("A <p>man</p> [0.1,0.1,0.4,0.9] rides <p>a horse</p> [0.3,0.4,0.9,0.95] [sic] "
            "near [0.1, 0.2, 0.3] trees.")
    spans = parse(text)
    assert [s.phrase for s in spans] == ["man", "a horse"]
    assert first_box(text) == Box(0.1, 0.1, 0.4, 0.9)
    assert strip_grounding(text) == "A man rides a horse [sic] near [0.1, 0.2, 0.3] trees."
    assert first_box("no box here") is None


def test_keypoint_names_are_tolerant_and_ordered():
    text = "<p>Left_Eye</p> [0.4,0.2] <p>nose</p>[0.5,0.3] <p>nose</p> [0.9,0.9] <p>tail</p> [0.1,0.1]"
    assert parse_keypoints(text) == Keypoints((("nose", Point(0.5, 0.3)),
                                               ("left eye", Point(0.4, 0.2))))
    assert len(COCO_KEYPOINTS) == 17


def _two_decimals(v):
    return float(f"{min(max(v, 0.0), 1.0):.2f}")


def test_box_text_round_trip_property():
    rng = random.Random(0)
    for _ in range(500):
        boxes = [Box(*(rng.uniform(-0.2, 1.2) for _ in range(4))) for _ in range(rng.randint(1, 4))]
        phrase = "".join(rng.choice(string.ascii_letters + " ,.[]<>") for _ in range(rng.randint(1, 12)))
        text = ground(phrase, boxes)
        (span,) = parse(text)
        expected = [Box(*(_two_decimals(v) for v in (b.x1, b.y1, b.x2, b.y2))) for b in boxes]
        assert list(span.boxes) == expected
        assert format_boxes(span.boxes) == format_boxes(boxes)


_ALPHABET = "<p></p>[];,.0123456789- \n\tab\u00e9\u4e2d"


def test_parser_never_raises_on_garbage():
    rng = random.Random(1)
    for _ in range(2000):
        text = "".join(rng.choice(_ALPHABET) for _ in range(rng.randint(0, 80)))
        for span in parse(text):
            assert 0 <= span.start < span.end <= len(text)
        parse_boxes(text), parse_keypoints(text), strip_grounding(text), parse_detections(text)
    assert parse(None) == [] and strip_grounding(b"[0,0,1,1]") == ""
    assert parse("[" + "9" * 400 + ",0,0,0]")[0].boxes[0].x1 == float("inf")
