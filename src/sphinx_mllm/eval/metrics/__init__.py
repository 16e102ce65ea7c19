"""Benchmark metrics: pure functions over plain Python values, looked up by name.

    from sphinx_mllm.eval.metrics import get_metric
    get_metric("vqa_accuracy")(["two"], [["2"] * 10])  # {"accuracy": 100.0, "n": 1}

Rates are percentages in [0, 100]; definitions and every deliberate choice are in
docs/evaluation.md.
"""

from .answers import (
    anls,
    anls_item_score,
    exact_match_accuracy,
    extract_choice_letter,
    levenshtein,
    multiple_choice_accuracy,
    normalize_vqa_answer,
    relaxed_accuracy,
    relaxed_match,
    vqa_accuracy,
    vqa_item_score,
)
from .boxes import box_area, box_iou, rec_accuracy
from .captions import CAPTION_METRICS, caption_metrics, simple_tokenize
from .coco import detection_map, keypoint_oks_ap, pck
from .registry import METRICS, get_metric, register
from .yesno import (
    MME_COGNITION,
    MME_PERCEPTION,
    mme,
    mme_parse,
    pope,
    pope_answer_is_parsable,
    pope_answer_is_yes,
)

__all__ = [
    "CAPTION_METRICS", "METRICS", "MME_COGNITION", "MME_PERCEPTION",
    "anls", "anls_item_score", "box_area", "box_iou", "caption_metrics", "detection_map",
    "exact_match_accuracy", "extract_choice_letter", "get_metric", "keypoint_oks_ap", "levenshtein",
    "mme", "mme_parse", "multiple_choice_accuracy", "normalize_vqa_answer", "pck", "pope",
    "pope_answer_is_parsable", "pope_answer_is_yes", "rec_accuracy", "register", "relaxed_accuracy",
    "relaxed_match", "simple_tokenize", "vqa_accuracy", "vqa_item_score",
]
