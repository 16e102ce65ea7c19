"""POPE and MME on hand-made cases; expected values worked out in comments."""

import pytest

from sphinx_mllm.eval.metrics import mme, mme_parse, pope, pope_answer_is_parsable, pope_answer_is_yes

POPE_PREDS = ["Yes, there is a dog.", "No.", "There is a cat.", "not sure", "yes", "Maybe"]
POPE_REFS = ["yes", "no", "yes", "yes", "no", "no"]


def test_pope_official_parsing():
    assert pope_answer_is_yes("Yes, there is a dog.")
    assert not pope_answer_is_yes("No.")
    assert not pope_answer_is_yes("There is no dog.")
    assert pope_answer_is_yes("There is a dog. No doubt.")  # only the first sentence counts
    assert pope_answer_is_yes("NO")  # exact words "No"/"no"/"not" only, as upstream
    assert not pope_answer_is_parsable("Maybe")
    assert pope_answer_is_parsable("Yes!")


def test_pope_unparsable_answers_count_as_yes_like_the_official_script():
    # parse: yes(TP) no(TN) unparsable->yes(TP) no(FN) yes(FP) unparsable->yes(FP)
    # TP=2 FP=2 TN=1 FN=1 -> acc 3/6, precision 2/4, recall 2/3,
    # F1 = 2PR/(P+R) = 2*(1/2)*(2/3)/(7/6) = 4/7, yes ratio 4/6.
    out = pope(POPE_PREDS, POPE_REFS)
    assert (out["tp"], out["fp"], out["tn"], out["fn"], out["unparsable"]) == (2, 2, 1, 1, 2)
    assert out["accuracy"] == pytest.approx(50.0)
    assert out["precision"] == pytest.approx(50.0)
    assert out["recall"] == pytest.approx(200 / 3)
    assert out["f1"] == pytest.approx(400 / 7)
    assert out["yes_ratio"] == pytest.approx(400 / 6)


def test_pope_unparsable_as_no():
    # The two unparsable answers flip: item 3 (label yes) -> FN, item 6 (label no) -> TN.
    # TP=1 FP=1 TN=2 FN=2 -> acc 3/6, precision 1/2, recall 1/3, F1 = 2*(1/6)/(5/6) = 2/5,
    # yes ratio 2/6.
    out = pope(POPE_PREDS, POPE_REFS, unparsable_as="no")
    assert (out["tp"], out["fp"], out["tn"], out["fn"], out["unparsable"]) == (1, 1, 2, 2, 2)
    assert out["accuracy"] == pytest.approx(50.0)
    assert out["precision"] == pytest.approx(50.0)
    assert out["recall"] == pytest.approx(100 / 3)
    assert out["f1"] == pytest.approx(40.0)
    assert out["yes_ratio"] == pytest.approx(100 / 3)


def test_pope_rejects_bad_labels():
    with pytest.raises(ValueError):
        pope(["yes"], ["maybe"])


@pytest.mark.parametrize(
    "text, parsed",
    [("Yes", "yes"), ("no", "no"), ("No, there is not.", "no"), ("yes.", "yes"),
     ("I don't know", "other"), ("  yes", "other")],  # the last: "yes" is not in the first 4 chars
)
def test_mme_parse(text, parsed):
    assert mme_parse(text) == parsed


def test_mme_acc_plus_and_totals():
    preds = ["Yes", "No, there is not.", "yes", "Yes", "I don't know", "no"]
    refs = ["Yes", "No", "Yes", "No", "Yes", "No"]
    tasks = ["existence"] * 4 + ["code_reasoning"] * 2
    images = ["e1", "e1", "e2", "e2", "c1", "c1"]
    out = mme(preds, refs, subtasks=tasks, image_ids=images)
    # existence: answers right, right, right, wrong -> acc 3/4 = 75;
    #   image e1 both right, e2 not -> acc+ 1/2 = 50; score 125.
    assert out["existence/acc"] == 75.0
    assert out["existence/acc_plus"] == 50.0
    assert out["existence/score"] == 125.0
    # code_reasoning: "other" (wrong), right -> acc 50; c1 not fully right -> acc+ 0; score 50.
    assert out["code_reasoning/score"] == 50.0
    # Perception sums perception subtasks (only existence here), cognition the rest.
    assert (out["perception"], out["cognition"], out["total"]) == (125.0, 50.0, 175.0)
    assert out["unparsable"] == 1


def test_mme_rejects_unknown_subtask():
    with pytest.raises(ValueError, match="subtask"):
        mme(["yes"], ["yes"], subtasks=["counting"], image_ids=[0])
