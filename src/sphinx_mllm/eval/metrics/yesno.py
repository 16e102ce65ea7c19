"""Yes/no benchmarks: POPE and MME.

Both parse the model's free text into yes / no with the rule of their official script; the two
rules differ, and a harness that mixes them up moves POPE by points (see docs/evaluation.md).
"""

from __future__ import annotations

from collections import defaultdict
from typing import Hashable, Literal, Sequence

from .registry import check_paired, percent, register

MME_PERCEPTION = (
    "existence", "count", "position", "color", "posters",
    "celebrity", "scene", "landmark", "artwork", "OCR",
)
MME_COGNITION = ("commonsense_reasoning", "numerical_calculation", "text_translation", "code_reasoning")

_YES_NO_WORDS = frozenset({"yes", "no", "not"})


def pope_answer_is_yes(text: str) -> bool:
    """The official POPE rule: keep the text before the first ".", delete commas, split on
    spaces; the answer is "no" if a word is exactly "No", "no" or "not", otherwise "yes"."""
    words = text.split(".")[0].replace(",", "").split(" ")
    return not ({"No", "no", "not"} & set(words))


def pope_answer_is_parsable(text: str) -> bool:
    """Whether the first sentence says yes / no / not at all (case-insensitive, punctuation
    around a word ignored). Answers failing this are reported as ``unparsable``."""
    first = text.split(".")[0]
    return any(w.strip("!?,;:'\"()") in _YES_NO_WORDS for w in first.lower().split())


@register("pope")
def pope(
    predictions: Sequence[str],
    references: Sequence[str],
    unparsable_as: Literal["yes", "no"] = "yes",
) -> dict[str, float]:
    """POPE scores, "yes" being the positive class.

    ``references`` are "yes" / "no" (any case). Answers are parsed with ``pope_answer_is_yes``;
    an answer that says neither yes nor no (``pope_answer_is_parsable`` is False) counts as
    ``unparsable_as``: "yes" is what the official script does (no "no"/"not" word means yes),
    "no" is the stricter reading some harnesses use.

    Returns ``accuracy``, ``precision``, ``recall``, ``f1``, ``yes_ratio`` (share of answers
    read as yes), all x100 (precision / recall / F1 are 0 when undefined), plus the counts
    ``tp``, ``fp``, ``tn``, ``fn``, ``unparsable`` and ``n``.
    """
    if unparsable_as not in ("yes", "no"):
        raise ValueError(f"unparsable_as must be 'yes' or 'no', got {unparsable_as!r}")
    n = check_paired(predictions, references)
    tp = fp = tn = fn = unparsable = 0
    for pred, ref in zip(predictions, references):
        label = ref.strip().lower()
        if label not in ("yes", "no"):
            raise ValueError(f"POPE reference must be 'yes' or 'no', got {ref!r}")
        if pope_answer_is_parsable(pred):
            said_yes = pope_answer_is_yes(pred)
        else:
            unparsable += 1
            said_yes = unparsable_as == "yes"
        if said_yes:
            tp, fp = (tp + 1, fp) if label == "yes" else (tp, fp + 1)
        else:
            tn, fn = (tn + 1, fn) if label == "no" else (tn, fn + 1)
    precision = percent(tp, tp + fp)
    recall = percent(tp, tp + fn)
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "accuracy": percent(tp + tn, n),
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "yes_ratio": percent(tp + fp, n),
        "tp": tp, "fp": fp, "tn": tn, "fn": fn,
        "unparsable": unparsable,
        "n": n,
    }


def mme_parse(text: str) -> str:
    """The official MME rule: lower-case; an exact "yes"/"no" is itself, otherwise look in the
    first 4 characters for "yes", then "no"; anything else is "other" (always wrong)."""
    text = text.lower()
    if text in ("yes", "no"):
        return text
    head = text[:4]
    return "yes" if "yes" in head else "no" if "no" in head else "other"


@register("mme")
def mme(
    predictions: Sequence[str],
    references: Sequence[str],
    subtasks: Sequence[str],
    image_ids: Sequence[Hashable],
) -> dict[str, float]:
    """MME scores.

    Item ``i`` asks a yes/no question (``references[i]``: "Yes"/"No") about image
    ``image_ids[i]`` of subtask ``subtasks[i]`` (MME's folder names, e.g. "OCR", "count").
    Per subtask: ``{t}/acc`` = share of questions right, ``{t}/acc_plus`` = share of images with
    all their (two) questions right, both x100, and ``{t}/score`` = acc + acc_plus (0..200).
    ``perception`` / ``cognition`` sum the scores of the present subtasks of each group
    (full MME: 0..2000 / 0..800), ``total`` both. Also ``unparsable`` ("other") and ``n``.
    """
    n = check_paired(predictions, references)
    if not len(subtasks) == len(image_ids) == n:
        raise ValueError("predictions, references, subtasks and image_ids must be equally long")
    known = set(MME_PERCEPTION) | set(MME_COGNITION)
    right_by_task: dict[str, list[bool]] = defaultdict(list)
    right_by_image: dict[tuple[str, Hashable], list[bool]] = defaultdict(list)
    unparsable = 0
    for pred, ref, task, image in zip(predictions, references, subtasks, image_ids):
        if task not in known:
            raise ValueError(f"unknown MME subtask {task!r}; known: {sorted(known)}")
        answer = mme_parse(pred)
        unparsable += answer == "other"
        right = answer == ref.strip().lower()
        right_by_task[task].append(right)
        right_by_image[(task, image)].append(right)
    out: dict[str, float] = {}
    for task, rights in right_by_task.items():
        images = [all(r) for (t, _), r in right_by_image.items() if t == task]
        out[f"{task}/acc"] = percent(sum(rights), len(rights))
        out[f"{task}/acc_plus"] = percent(sum(images), len(images))
        out[f"{task}/score"] = out[f"{task}/acc"] + out[f"{task}/acc_plus"]
    out["perception"] = sum(out.get(f"{t}/score", 0.0) for t in MME_PERCEPTION)
    out["cognition"] = sum(out.get(f"{t}/score", 0.0) for t in MME_COGNITION)
    out["total"] = out["perception"] + out["cognition"]
    out["unparsable"] = unparsable
    out["n"] = n
    return out
