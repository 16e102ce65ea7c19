"""IoU and REC accuracy on hand-made boxes (x1, y1, x2, y2 pixels)."""

import pytest

from sphinx_mllm.eval.metrics import box_iou, rec_accuracy


def test_box_iou():
    assert box_iou((0, 0, 10, 10), (0, 0, 10, 10)) == 1.0
    # overlap 5x10 = 50, union 100 + 100 - 50 = 150
    assert box_iou((0, 0, 10, 10), (5, 0, 15, 10)) == pytest.approx(1 / 3)
    assert box_iou((0, 0, 10, 10), (20, 20, 30, 30)) == 0.0
    assert box_iou((5, 5, 5, 5), (5, 5, 5, 5)) == 0.0  # empty union
    assert box_iou((10, 10, 0, 0), (0, 0, 10, 10)) == 0.0  # inverted box has no area
    with pytest.raises(ValueError):
        box_iou((0, 0, 1), (0, 0, 1, 1))


def test_rec_accuracy_counts_malformed_as_wrong():
    preds = [(0, 0, 10, 10), (0, 0, 10, 10), (0, 0, 10, 10), None, (1, 2, 3)]
    refs = [(0, 0, 10, 10), (5, 0, 15, 10), (0, 0, 10, 20), (0, 0, 1, 1), (1, 2, 3, 4)]
    # IoU: 1 (hit), 1/3 (miss), 100/200 = 0.5 (hit: the threshold is inclusive),
    # None and a 3-number box are malformed (miss, IoU 0).
    out = rec_accuracy(preds, refs)
    assert out["acc50"] == pytest.approx(100 * 2 / 5)
    assert out["mean_iou"] == pytest.approx(100 * (1 + 1 / 3 + 0.5) / 5)
    assert (out["malformed"], out["n"]) == (2, 5)
