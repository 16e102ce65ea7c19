"""Tasks: structured answer text (boxes, keypoints), frames, and the task prompt registry.

The one source of truth for what SPHINX is asked and how its structured answers read; data
adapters, chat, the API, the demo and evaluation all import from here.
"""

from .formats import (COCO_KEYPOINTS, COCO_SKELETON, DECIMALS, Detection, Keypoints, Span,
                      first_box, format_box, format_boxes, format_detections, format_keypoints,
                      format_point, ground, parse, parse_boxes, parse_detections, parse_keypoints,
                      strip_grounding)
from .geometry import Box, ImageFrame, Point
from .objects import (AnswerObject, BoxObject, KeypointSet, PointObject, answer_objects,
                      objects_json)
from .registry import (FREE_FORM_TASKS, LM_TASKS, QA, TASK_NAMES, TASKS, Caption, Choice, Detections,
                       Example, GroundedCaption, Pose, Region, Task, get_task, make_turn, plural,
                       sample_rng)

__all__ = [
    "Box", "Caption", "COCO_KEYPOINTS", "COCO_SKELETON", "Choice", "DECIMALS", "Detection",
    "Detections", "Example", "FREE_FORM_TASKS", "GroundedCaption", "ImageFrame", "Keypoints",
    "LM_TASKS",
    "Point", "Pose", "QA", "Region", "Span", "TASKS", "TASK_NAMES", "Task", "first_box",
    "format_box", "format_boxes", "format_detections", "format_keypoints", "format_point",
    "get_task", "ground", "make_turn", "parse", "parse_boxes", "parse_detections",
    "parse_keypoints", "plural", "sample_rng", "strip_grounding",
    "AnswerObject", "BoxObject", "KeypointSet", "PointObject", "answer_objects", "objects_json",
]
