"""Structured answers: parsed with the one parser, mapped to original pixels."""

import pytest

from sphinx_mllm.tasks import (Box, BoxObject, ImageFrame, KeypointSet, Point, PointObject,
                               answer_objects, objects_json)

WIDE = ImageFrame(640, 480)  # square side 640, offset (0, 80)


def test_grounded_boxes_map_back_to_original_pixels():
    text = "<p>dog</p> [0.10,0.125,0.50,0.875;0.5,0.5,1,1] and [0.0,0.0,1.0,1.0]"
    objects = answer_objects(text, WIDE)
    assert objects == [BoxObject("dog", Box(64, 0, 320, 480)),
                       BoxObject("dog", Box(320, 240, 640, 480)),
                       BoxObject(None, Box(0, 0, 640, 480))]


def test_swapped_corners_are_ordered_and_clamped_to_the_image():
    [obj] = answer_objects("[0.9,0.95,0.1,0.05]", WIDE)
    assert obj.box == Box(64, 0, 576, 480)


def test_tall_image_offsets_x():
    [obj] = answer_objects("<p>title</p> [0.25,0.0,0.75,0.5]", ImageFrame(200, 400))
    assert obj == BoxObject("title", Box(0, 0, 200, 200))  # offset (100, 0), side 400


def test_keypoint_sets_split_when_a_name_repeats_and_other_points_stay_points():
    text = ("<p>nose</p> [0.5,0.5] <p>left_eye</p> [0.25,0.5] <p>Nose</p> [0.75,0.5] "
            "<p>tip of the pen</p> [0.0,0.125]")
    objects = answer_objects(text, WIDE)
    assert objects[0] == PointObject("tip of the pen", Point(0, 0))
    assert objects[1:] == [KeypointSet((("nose", Point(320, 240)), ("left eye", Point(160, 240)))),
                           KeypointSet((("nose", Point(480, 240)),))]


def test_json_form():
    objects = answer_objects("<p>cat</p> [0.1,0.2,0.3,0.4] <p>right wrist</p> [0.5,0.5]",
                             ImageFrame(100, 100))
    assert objects_json(objects) == [
        {"type": "box", "label": "cat", "box": [10.0, 20.0, 30.0, 40.0]},
        {"type": "keypoints", "keypoints": {"right wrist": [50.0, 50.0]}}]


@pytest.mark.parametrize("text", ["", "None", "no boxes", "[0.1,0.2,0.3", "<p>x</p> [", "[[[]]]"])
def test_text_without_complete_coordinates_gives_no_objects(text):
    assert answer_objects(text, WIDE) == []
