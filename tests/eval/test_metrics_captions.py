"""Caption metrics: BLEU / ROUGE-L / CIDEr by hand (pure Python); PTB and METEOR need Java."""

import math
import shutil

import pytest

pytest.importorskip("pycocoevalcap")

from sphinx_mllm.eval.metrics import caption_metrics, simple_tokenize  # noqa: E402

PURE = ("bleu", "rouge_l", "cider")
needs_java = pytest.mark.skipif(shutil.which("java") is None, reason="needs a Java runtime")


def test_simple_tokenizer():
    assert simple_tokenize("A dog, running!  On grass.") == "a dog running on grass"


def test_bleu1_and_rouge_l_by_hand():
    out = caption_metrics(
        ["the cat"], [["the cat sat"]], metrics=("bleu", "rouge_l"), tokenizer="simple"
    )
    # BLEU-1: unigram precision 2/2, brevity penalty exp(1 - 3/2) -> 100 * e^-0.5 = 60.653
    assert out["bleu_1"] == pytest.approx(100 * math.exp(-0.5), rel=1e-6)
    # ROUGE-L: LCS 2, precision 2/2, recall 2/3, beta 1.2:
    # (1 + 1.44) * 1 * (2/3) / (2/3 + 1.44 * 1) = 1.62667 / 2.10667 = 0.772152
    assert out["rouge_l"] == pytest.approx(100 * (2.44 * 2 / 3) / (2 / 3 + 1.44))
    assert "cider" not in out and "meteor" not in out


def test_cider_perfect_captions():
    refs = [["a black cat sleeps"], ["a brown dog runs"]]
    # Identical candidate and reference: every n-gram order n = 1..4 has cosine 1 (n-grams seen in
    # both images, like "a", get idf 0 but the rest carry the vectors), no length penalty, and
    # CIDEr-D multiplies the mean over n by 10 -> 10.0, x100 = 1000.
    preds = ["a black cat sleeps", "a brown dog runs"]
    out = caption_metrics(preds, refs, metrics=PURE, tokenizer="simple")
    assert out["cider"] == pytest.approx(1000.0)
    assert out["bleu_1"] == pytest.approx(100.0)
    assert out["rouge_l"] == pytest.approx(100.0)


def test_caption_rejects_unknown_metric_and_empty_references():
    with pytest.raises(ValueError, match="spice"):
        caption_metrics(["a"], [["a"]], metrics=("spice",), tokenizer="simple")
    with pytest.raises(ValueError):
        caption_metrics(["a"], [[]], metrics=PURE, tokenizer="simple")


@needs_java
def test_ptb_tokenizer_lowercases_and_drops_punctuation():
    out = caption_metrics(["A cat, sitting."], [["a cat sitting"]], metrics=("rouge_l",))
    # After PTB: "a cat sitting" on both sides -> LCS 3 of 3 -> ROUGE-L 100.
    assert out["rouge_l"] == pytest.approx(100.0)


@needs_java
def test_meteor_identical_caption_scores_full():
    # METEOR 1.5 scores an exact match 1.0; a partial match scores strictly between 0 and 1.
    exact = caption_metrics(["a cat on a mat"], [["a cat on a mat"]], metrics=("meteor",))
    assert exact["meteor"] == 100.0
    partial = caption_metrics(["a dog on a mat"], [["a cat on a mat"]], metrics=("meteor",))
    assert 0.0 < partial["meteor"] < 100.0
