"""COCO box mAP, keypoint OKS AP and PCK on cases small enough to work out by hand."""

import math

import pytest

pytest.importorskip("pycocotools")

from sphinx_mllm.eval.metrics import detection_map, keypoint_oks_ap, pck  # noqa: E402

# Two 40x40 boxes (area 1600: COCO "medium") in one image.
GT = [
    {"image_id": 1, "category_id": 1, "bbox": (10, 10, 50, 50)},
    {"image_id": 1, "category_id": 1, "bbox": (60, 60, 100, 100)},
]


def test_detection_map_perfect():
    out = detection_map(GT, GT)
    assert out["map"] == pytest.approx(100.0)
    assert out["map_50"] == pytest.approx(100.0)
    assert out["map_medium"] == pytest.approx(100.0)
    assert math.isnan(out["map_small"])  # no small ground truth: undefined, not 0
    assert out["mar_1"] == pytest.approx(50.0)  # one detection per image finds 1 of 2


def test_detection_map_empty_predictions():
    out = detection_map(GT, [])
    assert out["map"] == 0.0 and out["mar_100"] == 0.0


def test_detection_map_one_hit_one_false_positive():
    preds = [
        dict(GT[0], score=0.9),  # exact hit, ranked first
        {"image_id": 1, "category_id": 1, "bbox": (200, 200, 220, 220), "score": 0.8},  # no overlap
    ]
    # At every IoU threshold: precision 1 up to recall 1/2, then nothing. COCO samples
    # precision at 101 recall points 0, .01, ..., 1; 51 of them (0 .. .50) reach precision 1.
    # AP = 51 / 101 at each threshold, so mAP = 100 * 51 / 101.
    out = detection_map(GT, preds)
    assert out["map"] == pytest.approx(100 * 51 / 101)
    assert out["map_50"] == pytest.approx(100 * 51 / 101)
    assert out["mar_100"] == pytest.approx(50.0)


def test_detection_map_false_positive_on_image_without_objects():
    # Image 2 has no ground truth; listing it makes its detection a ranked-first false positive:
    # precision 0 at recall 0, then 1/2 and 2/3 at recall .5 and 1, interpolated to 2/3 everywhere
    # -> AP = 2/3.
    preds = [
        {"image_id": 2, "category_id": 1, "bbox": (0, 0, 10, 10), "score": 0.99},
        dict(GT[0], score=0.9),
        dict(GT[1], score=0.8),
    ]
    out = detection_map(GT, preds, image_ids=[1, 2])
    assert out["map"] == pytest.approx(100 * 2 / 3)


def _person(offset: float = 0.0) -> list[tuple[float, float, int]]:
    return [(20 + 3 * i + offset, 30 + 4 * i, 2) for i in range(17)]


def test_keypoint_oks_ap_perfect():
    gt = [{"image_id": 1, "keypoints": _person(), "bbox": (0, 0, 100, 100)}]
    pred = [{"image_id": 1, "keypoints": [(x, y) for x, y, _ in _person()], "score": 1.0}]
    out = keypoint_oks_ap(gt, pred)
    assert out["map"] == pytest.approx(100.0)
    assert out["map_large"] == pytest.approx(100.0)  # area 10000 > 96^2
    assert math.isnan(out["map_medium"])


def test_keypoint_oks_ap_partial_with_custom_sigmas():
    # One keypoint, sigma 0.1, scale = area 10000, prediction 14.46 px off:
    # OKS = exp(-d^2 / (2 * area * (2 sigma)^2)) = exp(-209.09 / 800) = 0.770
    # -> matched at OKS thresholds .50 .55 .60 .65 .70 .75 (6 of 10), AP = 60.
    gt = [{"image_id": 1, "keypoints": [(50, 50, 2)], "bbox": (0, 0, 100, 100)}]
    pred = [{"image_id": 1, "keypoints": [(64.46, 50)], "score": 1.0}]
    out = keypoint_oks_ap(gt, pred, sigmas=[0.1])
    assert out["map"] == pytest.approx(60.0)
    assert out["map_50"] == pytest.approx(100.0)
    assert out["map_75"] == pytest.approx(100.0)
    with pytest.raises(ValueError, match="sigmas"):
        keypoint_oks_ap(gt, pred)


def test_pck_box_normalised():
    refs = [
        {"keypoints": [(10, 10, 2), (20, 20, 2), (30, 30, 0), (40, 40, 1)], "bbox": (0, 0, 100, 50)},
        {"keypoints": [(5, 5, 2)], "bbox": (0, 0, 10, 10)},
    ]
    preds = [[(16, 18), (31, 20), (0, 0), None], None]
    # Person 1: radius 0.1 * max(100, 50) = 10. (16,18): distance sqrt(36 + 64) = 10 -> correct
    # (inclusive); (31,20): 11 -> wrong; v=0 keypoint not counted; None -> wrong.
    # Person 2: no prediction -> its one keypoint wrong. 1 correct of 4 counted = 25.
    out = pck(preds, refs)
    assert out == {"pck": 25.0, "n_keypoints": 4, "n": 2}
    # At threshold 0.2 (radius 20 for person 1) the (31,20) point also counts: 2 of 4.
    assert pck(preds, refs, threshold=0.2)["pck"] == 50.0
