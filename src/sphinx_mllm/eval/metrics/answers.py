"""Short-answer metrics: VQA accuracy, exact match, ANLS, relaxed accuracy, multiple choice.

The rules follow the official scripts named in each docstring; ``docs/evaluation.md`` lists
every quirk we keep on purpose and every place we chose where the official code was ambiguous.
"""

from __future__ import annotations

import random
import re
from typing import Sequence

from .registry import check_paired, percent, register

# --- VQA answer normalisation (rules of the official VQA evaluation, vqaEval.py) ----------------

# Punctuation the official script deletes or turns into a space. Not in its list: "'" (so
# contractions survive), ":", and "." (periods have their own rule below).
_VQA_PUNCT = (
    ";", "/", "[", "]", '"', "{", "}", "(", ")", "=", "+",
    "\\", "_", "-", ">", "<", "@", "`", ",", "?", "!",
)
_DIGIT_COMMA_DIGIT = re.compile(r"\d,\d")
# The official pattern is "(?!<=\d)(\.)(?!\d)"; its first group is a (mistyped) lookahead that
# can never fail in front of a ".", so in effect: delete every period not followed by a digit.
_PERIOD_NOT_BEFORE_DIGIT = re.compile(r"\.(?!\d)")
_NUMBER_WORDS = {
    "none": "0", "zero": "0", "one": "1", "two": "2", "three": "3", "four": "4",
    "five": "5", "six": "6", "seven": "7", "eight": "8", "nine": "9", "ten": "10",
}
_ARTICLES = frozenset({"a", "an", "the"})
# Apostrophe-less spellings -> the spelling annotators' answers use. Same table as the official
# script, minus its entries that can never fire (keys with capitals are looked up after
# lower-casing; identity entries). "its" is deliberately absent: it is a valid possessive.
# "somebody'd" -> "somebodyd" is an upstream typo kept for parity.
_CONTRACTIONS = {
    "aint": "ain't", "arent": "aren't", "cant": "can't", "couldve": "could've",
    "couldnt": "couldn't", "couldn'tve": "couldn't've", "couldnt've": "couldn't've",
    "didnt": "didn't", "doesnt": "doesn't", "dont": "don't", "hadnt": "hadn't",
    "hadnt've": "hadn't've", "hadn'tve": "hadn't've", "hasnt": "hasn't", "havent": "haven't",
    "hed": "he'd", "hed've": "he'd've", "he'dve": "he'd've", "hes": "he's", "howd": "how'd",
    "howll": "how'll", "hows": "how's", "isnt": "isn't", "itd": "it'd", "itd've": "it'd've",
    "it'dve": "it'd've", "itll": "it'll", "maam": "ma'am", "mightnt": "mightn't",
    "mightnt've": "mightn't've", "mightn'tve": "mightn't've", "mightve": "might've",
    "mustnt": "mustn't", "mustve": "must've", "neednt": "needn't", "notve": "not've",
    "oclock": "o'clock", "oughtnt": "oughtn't", "ow's'at": "'ow's'at", "'ows'at": "'ow's'at",
    "'ow'sat": "'ow's'at", "shant": "shan't", "shed've": "she'd've", "she'dve": "she'd've",
    "shouldve": "should've", "shouldnt": "shouldn't", "shouldnt've": "shouldn't've",
    "shouldn'tve": "shouldn't've", "somebody'd": "somebodyd", "somebodyd've": "somebody'd've",
    "somebody'dve": "somebody'd've", "somebodyll": "somebody'll", "somebodys": "somebody's",
    "someoned": "someone'd", "someoned've": "someone'd've", "someone'dve": "someone'd've",
    "someonell": "someone'll", "someones": "someone's", "somethingd": "something'd",
    "somethingd've": "something'd've", "something'dve": "something'd've",
    "somethingll": "something'll", "thats": "that's", "thered": "there'd",
    "thered've": "there'd've", "there'dve": "there'd've", "therere": "there're",
    "theres": "there's", "theyd": "they'd", "theyd've": "they'd've", "they'dve": "they'd've",
    "theyll": "they'll", "theyre": "they're", "theyve": "they've", "twas": "'twas",
    "wasnt": "wasn't", "wed've": "we'd've", "we'dve": "we'd've", "weve": "we've",
    "werent": "weren't", "whatll": "what'll", "whatre": "what're", "whats": "what's",
    "whatve": "what've", "whens": "when's", "whered": "where'd", "wheres": "where's",
    "whereve": "where've", "whod": "who'd", "whod've": "who'd've", "who'dve": "who'd've",
    "wholl": "who'll", "whos": "who's", "whove": "who've", "whyll": "why'll",
    "whyre": "why're", "whys": "why's", "wont": "won't", "wouldve": "would've",
    "wouldnt": "wouldn't", "wouldnt've": "wouldn't've", "wouldn'tve": "wouldn't've",
    "yall": "y'all", "yall'll": "y'all'll", "y'allll": "y'all'll", "yall'd've": "y'all'd've",
    "y'alld've": "y'all'd've", "y'all'dve": "y'all'd've", "youd": "you'd",
    "youd've": "you'd've", "you'dve": "you'd've", "youll": "you'll", "youre": "you're",
    "youve": "you've",
}


def vqa_punctuation(text: str) -> str:
    """The official punctuation step (case is left alone).

    Each listed mark is deleted when the text has it next to a space or contains a
    digit-comma-digit run ("1,000" -> "1000"), otherwise replaced by a space ("t-shirt" ->
    "t shirt"). Then every period not followed by a digit is deleted ("3.5" keeps its point,
    "dog." -> "dog").
    """
    delete_all = _DIGIT_COMMA_DIGIT.search(text) is not None
    out = text
    for mark in _VQA_PUNCT:
        delete = delete_all or (mark + " ") in text or (" " + mark) in text
        out = out.replace(mark, "" if delete else " ")
    return _PERIOD_NOT_BEFORE_DIGIT.sub("", out)


def vqa_digits_articles(text: str) -> str:
    """The official word step: lower-case, number words -> digits ("two" -> "2"), drop
    articles ("a dog" -> "dog"), restore apostrophes ("dont" -> "don't"), single spaces."""
    words = [_NUMBER_WORDS.get(w, w) for w in text.lower().split()]
    return " ".join(_CONTRACTIONS.get(w, w) for w in words if w not in _ARTICLES)


def normalize_vqa_answer(text: str) -> str:
    """Full official normalisation of a model answer: whitespace, punctuation, then words."""
    text = text.replace("\n", " ").replace("\t", " ").strip()
    return vqa_digits_articles(vqa_punctuation(text))


def vqa_item_score(
    prediction: str, gt_answers: Sequence[str], normalize_references: bool = False
) -> float:
    """VQA accuracy of one answer, in [0, 1].

    ``gt_answers`` are the human answers (10 for VQAv2 / OK-VQA / TextVQA / VizWiz). Score =
    mean over the leave-one-out subsets (each drops one human answer) of
    ``min(#matches in the subset / 3, 1)``. With 10 answers: 4+ matches -> 1.0, 3 -> 0.9,
    2 -> 0.6, 1 -> 0.3, 0 -> 0.

    As in the official script the prediction is always fully normalised, while the reference
    answers (already normalised in the official annotation files) only get the punctuation step,
    and only when the humans disagree. ``normalize_references=True`` instead gives every
    reference the full normalisation (for annotation files holding raw answers).
    """
    if not gt_answers:
        raise ValueError("an item needs at least one reference answer")
    pred = normalize_vqa_answer(prediction)
    if normalize_references:
        refs = [normalize_vqa_answer(a) for a in gt_answers]
    elif len(set(gt_answers)) > 1:
        refs = [vqa_punctuation(a) for a in gt_answers]
    else:
        refs = list(gt_answers)
    matches = sum(r == pred for r in refs)
    # Dropping a matching answer leaves matches - 1 in the subset, dropping another leaves all.
    total = sum(min(1.0, (matches - (r == pred)) / 3.0) for r in refs)
    return total / len(refs)


@register("vqa_accuracy")
def vqa_accuracy(
    predictions: Sequence[str], references: Sequence[Sequence[str]], normalize_references: bool = False
) -> dict[str, float]:
    """VQAv2 / OK-VQA / TextVQA / VizWiz accuracy.

    ``predictions[i]`` is the model's answer text; ``references[i]`` the list of human answers.
    Returns ``{"accuracy": mean item score x 100, "n": #items}``; see ``vqa_item_score``.
    """
    n = check_paired(predictions, references)
    total = sum(vqa_item_score(p, r, normalize_references) for p, r in zip(predictions, references))
    return {"accuracy": percent(total, n), "n": n}


# --- Exact match (GQA, VSR, OCR-VQA, ...) -------------------------------------------------------


def _exact_form(text: str) -> str:
    return text.replace(".", "").strip().lower()


@register("exact_match")
def exact_match_accuracy(
    predictions: Sequence[str], references: Sequence[str | Sequence[str]]
) -> dict[str, float]:
    """Exact-match accuracy as SPHINX scores GQA / VSR (spec 11.1).

    Both sides: periods removed, surrounding whitespace stripped, lower-cased; a reference may be
    one string or a list of acceptable strings (any match counts). Returns ``{"accuracy", "n"}``.
    """
    n = check_paired(predictions, references)
    correct = 0
    for pred, ref in zip(predictions, references):
        options = [ref] if isinstance(ref, str) else list(ref)
        correct += _exact_form(pred) in {_exact_form(o) for o in options}
    return {"accuracy": percent(correct, n), "n": n}


# --- ANLS (DocVQA / InfographicVQA) ------------------------------------------------------------


def levenshtein(a: str, b: str) -> int:
    """Edit distance (insert, delete, substitute; each costs 1)."""
    if len(a) < len(b):
        a, b = b, a
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]


def anls_item_score(prediction: str, gt_answers: Sequence[str], threshold: float = 0.5) -> float:
    """Normalised Levenshtein similarity of one answer, in [0, 1] (official DocVQA script rules).

    For each reference: distance between the two strings lower-cased with whitespace collapsed,
    divided by the longer of the two *raw* lengths (the official script measures length before
    collapsing whitespace). Similarity = 1 - the smallest such ratio; a similarity below
    ``threshold`` scores 0, one equal to it is kept.
    """
    if not gt_answers:
        raise ValueError("an item needs at least one reference answer")
    pred = " ".join(prediction.strip().lower().split())
    ratios = []
    for answer in gt_answers:
        ref = " ".join(answer.strip().lower().split())
        length = max(len(answer.upper()), len(prediction.upper()))
        ratios.append(levenshtein(ref, pred) / length if length else 0.0)
    similarity = 1.0 - min(ratios)
    return similarity if similarity >= threshold else 0.0


@register("anls")
def anls(
    predictions: Sequence[str], references: Sequence[Sequence[str]], threshold: float = 0.5
) -> dict[str, float]:
    """Average Normalised Levenshtein Similarity (DocVQA), x100: ``{"anls", "n"}``."""
    n = check_paired(predictions, references)
    total = sum(anls_item_score(p, r, threshold) for p, r in zip(predictions, references))
    return {"anls": percent(total, n), "n": n}


# --- Relaxed accuracy (ChartQA) ----------------------------------------------------------------


def _as_number(text: str) -> float | None:
    """``float(text)``, with a trailing "%" meaning /100; None when it is not a number."""
    try:
        return float(text[:-1]) / 100.0 if text.endswith("%") else float(text)
    except ValueError:
        return None


def relaxed_match(prediction: str, target: str, tolerance: float = 0.05) -> bool:
    """ChartQA relaxed correctness (pix2struct's definition).

    If the prediction parses as a number and the target as a non-zero number, correct when
    ``|pred - target| / |target| <= tolerance`` (the boundary itself counts). Otherwise a
    case-insensitive exact string match. Both sides are stripped first.
    """
    prediction, target = prediction.strip(), target.strip()
    pred_value, target_value = _as_number(prediction), _as_number(target)
    if pred_value is not None and target_value:
        return abs(pred_value - target_value) / abs(target_value) <= tolerance
    return prediction.lower() == target.lower()


@register("relaxed_accuracy")
def relaxed_accuracy(
    predictions: Sequence[str], references: Sequence[str | Sequence[str]], tolerance: float = 0.05
) -> dict[str, float]:
    """ChartQA relaxed accuracy x100: ``{"relaxed_accuracy", "n"}``.

    A reference may be one string or a list (correct if any matches); see ``relaxed_match``.
    """
    n = check_paired(predictions, references)
    correct = 0
    for pred, ref in zip(predictions, references):
        options = [ref] if isinstance(ref, str) else list(ref)
        correct += any(relaxed_match(pred, o, tolerance) for o in options)
    return {"relaxed_accuracy": percent(correct, n), "n": n}


# --- Multiple choice (ScienceQA-IMG, AI2D, ...) ------------------------------------------------

_ANSWER_PREFIX = re.compile(r"^\s*(?:the\s+answer\s+is|answer\s*:)\s*", re.IGNORECASE)
_LEADING_LETTER = re.compile(r"^\(?([A-Z])\)?(?=$|[\s.,:;)])")


def extract_choice_letter(text: str, num_choices: int = 5) -> str | None:
    """The option letter an answer starts with, or None.

    Accepts "A", "A.", "(A)", "A) text", "A: text", "The answer is A." (the ScienceQA prompt
    pre-fills " The answer is", so models often repeat it). The letter must be one of the first
    ``num_choices`` letters; lower-case letters are not accepted ("a" is an article).
    """
    match = _LEADING_LETTER.match(_ANSWER_PREFIX.sub("", text.strip()))
    if match is None:
        return None
    letter = match.group(1)
    return letter if ord(letter) - ord("A") < num_choices else None


@register("multiple_choice_accuracy")
def multiple_choice_accuracy(
    predictions: Sequence[str],
    references: Sequence[str],
    num_choices: int | Sequence[int] = 5,
    seed: int | None = None,
) -> dict[str, float]:
    """Letter-answer accuracy (ScienceQA-IMG) x100: ``{"accuracy", "n", "unparsable"}``.

    ``references`` are letters ("A".."E"); ``num_choices`` is one count or one per item. An
    answer whose letter cannot be extracted is wrong by default; with ``seed`` it is replaced by
    a seeded random letter, as SPHINX's script does (unseeded there).
    """
    n = check_paired(predictions, references)
    counts = [num_choices] * n if isinstance(num_choices, int) else list(num_choices)
    rng = random.Random(seed)
    correct = unparsable = 0
    for pred, ref, k in zip(predictions, references, counts):
        letter = extract_choice_letter(pred, k)
        if letter is None:
            unparsable += 1
            if seed is not None:
                letter = chr(ord("A") + rng.randrange(k))
        correct += letter == ref.strip().upper()
    return {"accuracy": percent(correct, n), "n": n, "unparsable": unparsable}
