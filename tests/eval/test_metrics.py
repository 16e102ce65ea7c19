"""Short-answer metrics on hand-made cases; every expected value is worked out in a comment."""

import pytest

from sphinx_mllm.eval.metrics import (
    METRICS,
    anls,
    exact_match_accuracy,
    extract_choice_letter,
    get_metric,
    levenshtein,
    multiple_choice_accuracy,
    normalize_vqa_answer,
    relaxed_accuracy,
    vqa_accuracy,
    vqa_item_score,
)

TEN = 10


def test_registry_names_every_metric():
    assert set(METRICS) == {
        "vqa_accuracy", "exact_match", "anls", "relaxed_accuracy", "multiple_choice_accuracy",
        "pope", "mme", "rec_accuracy", "caption", "detection_map", "keypoint_oks_ap", "pck",
    }
    assert get_metric("vqa_accuracy") is vqa_accuracy
    with pytest.raises(KeyError, match="known"):
        get_metric("bleu-5")


def test_metrics_reject_mismatched_or_empty_inputs():
    with pytest.raises(ValueError):
        vqa_accuracy(["a"], [])
    with pytest.raises(ValueError):
        exact_match_accuracy([], [])


@pytest.mark.parametrize(
    "raw, normalised",
    [
        ("two", "2"),  # number word -> digit
        ("a dog", "dog"),  # article dropped
        ("The  Dog.", "dog"),  # case, spaces, trailing period
        ("dont", "don't"),  # contraction table
        ("its", "its"),  # not in the table: "its" is a valid possessive
        ("it's", "it's"),  # apostrophes are not punctuation
        ("1,000", "1000"),  # digit-comma-digit: every mark is deleted, not spaced
        ("3.5", "3.5"),  # a period before a digit stays
        ("3.5.", "3.5"),  # ...the one before the end does not
        ("t-shirt", "t shirt"),  # a mark with no space beside it becomes a space
        ("red, blue", "red blue"),  # ", " has a space beside it: deleted
    ],
)
def test_vqa_normalisation_rules(raw, normalised):
    assert normalize_vqa_answer(raw) == normalised


def test_vqa_number_words_article_and_contraction_credit():
    # Each item: 10 identical human answers; the prediction matches after normalisation or not.
    preds = ["two", "a dog", "its", "it's", "1,000", "3.5"]
    refs = [["2"] * TEN, ["dog"] * TEN, ["it's"] * TEN, ["it's"] * TEN, ["1000"] * TEN, ["3.5"] * TEN]
    # matches: yes, yes, no ("its" != "it's"), yes, yes, yes -> 5 of 6 items score 1.0
    assert vqa_accuracy(preds, refs)["accuracy"] == pytest.approx(100 * 5 / 6)


def test_vqa_references_are_not_normalised_by_default():
    # Official rule: references are taken as already normalised, so "2" never matches "two".
    assert vqa_item_score("2", ["two"] * TEN) == 0.0
    assert vqa_item_score("2", ["two"] * TEN, normalize_references=True) == 1.0
    # Unanimous references are not even punctuation-processed: "t-shirt" != "t shirt".
    assert vqa_item_score("t-shirt", ["t-shirt"] * TEN) == 0.0
    # When the humans disagree they are: 5 x "t shirt" matches -> score 1.0.
    assert vqa_item_score("t-shirt", ["t-shirt"] * 5 + ["shirt"] * 5) == 1.0


def test_vqa_ten_answer_partial_credit():
    # Leave-one-out over 10 answers, m = humans matching the prediction:
    # m=1: dropping the match leaves 0 -> 0; the 9 others leave 1 -> 1/3.   mean 3/10 = 0.3
    # m=2: 2 drops leave 1 -> 1/3; 8 drops leave 2 -> 2/3. (2/3 + 16/3) / 10 = 0.6
    # m=3: 3 drops leave 2 -> 2/3; 7 drops leave 3 -> 1.    (2 + 7) / 10    = 0.9
    # m=4: every subset keeps >= 3 matches                                   = 1.0
    for m, expected in [(0, 0.0), (1, 0.3), (2, 0.6), (3, 0.9), (4, 1.0)]:
        refs = ["yes"] * m + ["no"] * (TEN - m)
        assert vqa_item_score("Yes", refs) == pytest.approx(expected)
    # Two items scoring 0.6 and 0.9: accuracy = 100 * 1.5 / 2 = 75.
    refs = [["2"] * 2 + ["3"] * 8, ["2"] * 3 + ["3"] * 7]
    assert vqa_accuracy(["two", "2"], refs)["accuracy"] == pytest.approx(75.0)


def test_exact_match_strips_periods_and_case_only():
    preds = ["Yes.", " Left ", "the left", "blue"]
    refs = ["yes", "left", "left", ["red", "Blue"]]
    # "yes"=="yes", "left"=="left", "the left"!="left" (no article rule here), "blue" in list
    # -> 3 of 4 = 75.
    out = exact_match_accuracy(preds, refs)
    assert out == {"accuracy": 75.0, "n": 4}


def test_levenshtein():
    assert levenshtein("kitten", "sitting") == 3
    assert levenshtein("", "abc") == 3


def test_anls_near_miss_threshold_and_best_reference():
    preds = ["Hello World", "abc", "ab", "cat", "a  b"]
    refs = [["hello word"], ["xyz"], ["ac"], ["dog", "cats"], ["a b"]]
    # 1: distance("hello world", "hello word") = 1, longer raw length 11 -> 1 - 1/11 = 10/11
    # 2: distance 3 over 3 -> similarity 0 (< 0.5) -> 0
    # 3: distance 1 over 2 -> similarity 0.5, at the threshold -> kept, 0.5
    # 4: best of "dog" (3/3 -> 0) and "cats" (1/4 -> 0.75) -> 0.75
    # 5: whitespace collapsed -> distance 0 -> 1.0 (the raw length 4 only divides a 0)
    expected = 100 * (10 / 11 + 0 + 0.5 + 0.75 + 1.0) / 5
    assert anls(preds, refs)["anls"] == pytest.approx(expected)


def test_relaxed_accuracy_five_percent_boundary():
    preds = ["105", "95", "105.1", "Yes", "0.0", "12%"]
    refs = ["100", "100", "100", "yes", "0", "0.12"]
    # |105-100|/100 = 0.05 <= 0.05 correct; |95-100|/100 = 0.05 correct; 0.051 wrong;
    # non-numeric: case-insensitive equality, correct; target 0 -> string compare "0.0" != "0",
    # wrong; "12%" -> 0.12 equals 0.12, correct.  4 of 6.
    assert relaxed_accuracy(preds, refs)["relaxed_accuracy"] == pytest.approx(100 * 4 / 6)
    # A list of references is correct when any matches.
    assert relaxed_accuracy(["7"], [["3", "7.2"]])["relaxed_accuracy"] == 100.0  # 0.2/7.2 < 0.05


@pytest.mark.parametrize(
    "text, letter",
    [("A", "A"), ("B.", "B"), (" The answer is C.", "C"), ("(D) a fox", "D"), ("E", "E"),
     ("a dog", None), ("I think so", None), ("", None)],
)
def test_extract_choice_letter(text, letter):
    assert extract_choice_letter(text, num_choices=5) == letter


def test_multiple_choice_accuracy_counts_unparsable_as_wrong():
    preds = ["A", "The answer is B.", "C) foo", "no idea", "E"]
    refs = ["A", "B", "D", "A", "E"]
    # right, right, wrong (C != D), unparsable, item 5 has only 4 choices so "E" is unparsable
    # -> 2 of 5 = 40, 2 unparsable.
    out = multiple_choice_accuracy(preds, refs, num_choices=[4, 4, 4, 4, 4])
    assert out == {"accuracy": 40.0, "n": 5, "unparsable": 2}
    # With a seed the unparsable ones get a random letter: the result is reproducible.
    seeded = [multiple_choice_accuracy(preds, refs, num_choices=4, seed=3) for _ in range(2)]
    assert seeded[0] == seeded[1] and seeded[0]["accuracy"] >= 40.0
