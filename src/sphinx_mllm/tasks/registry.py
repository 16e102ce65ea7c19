"""Every SPHINX task: its instruction prompt(s) and how its answer is written.

A task is a :class:`Task` record in :data:`TASKS`; each takes one typed example record (``QA``,
``Region``, ``Detections``...) and turns it into a (question, answer) pair with :func:`make_turn`.
Prompts are verbatim from spec 8.3 where the spec has them (``prompt_source == "spec"``); for the
other tasks (REG, document layout) they are a small set of our own paraphrases, one picked per
sample by the caller's seeded RNG so the model does not overfit one phrasing.

All boxes and points in the example records are normalised to the padded square.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Callable, Literal

from .formats import (Detection, Keypoints, format_box, format_boxes, format_detections,
                      format_keypoints, ground)
from .geometry import Box

# --- example records ---------------------------------------------------------------------------


@dataclass(frozen=True)
class QA:
    """A question with a short answer (VQAv2, OK-VQA, GQA, TextVQA)."""

    question: str
    answer: str


@dataclass(frozen=True)
class Choice:
    """A multiple-choice question; ``answer`` indexes ``options``."""

    question: str
    options: tuple[str, ...]
    answer: int


@dataclass(frozen=True)
class Caption:
    text: str


@dataclass(frozen=True)
class Region:
    """A phrase and the box(es) it refers to (REC: phrase -> boxes; REG: first box -> phrase)."""

    phrase: str
    boxes: tuple[Box, ...]


@dataclass(frozen=True)
class GroundedCaption:
    """Caption text interleaved with grounded phrases, in reading order."""

    parts: tuple[str | Detection, ...]


@dataclass(frozen=True)
class Detections:
    """Labelled boxes; ``category`` names the one class asked for (category detection only)."""

    items: tuple[Detection, ...]
    category: str | None = None


@dataclass(frozen=True)
class Pose:
    person: Box
    keypoints: Keypoints


Example = QA | Choice | Caption | Region | GroundedCaption | Detections | Pose

# --- answers -----------------------------------------------------------------------------------

LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"

# Irregular plurals among COCO / LVIS-style category names; the prompt asks for "all {plural}"
# the way spec 8.3's example does ("Detect all people shown in the image.").
_IRREGULAR = {"person": "people", "mouse": "mice", "knife": "knives", "sheep": "sheep",
              "man": "men", "woman": "women", "child": "children", "foot": "feet"}


def plural(noun: str) -> str:
    """English plural of a category name (last word only); other names ending in ``s`` are kept
    (``skis``, ``scissors``)."""
    head, _, last = noun.rpartition(" ")
    if last in _IRREGULAR:
        last = _IRREGULAR[last]
    elif last.endswith(("ss", "us", "x", "ch", "sh")):
        last += "es"
    elif last.endswith("y") and last[-2:-1] not in tuple("aeiou"):
        last = last[:-1] + "ies"
    elif not last.endswith("s"):
        last += "s"
    return f"{head} {last}" if head else last


def _options(example: Choice) -> str:
    return "\n".join(f"{LETTERS[i]}. {o}" for i, o in enumerate(example.options))


def _grounded_caption(example: GroundedCaption) -> str:
    return "".join(p if isinstance(p, str) else ground(p.label, p.boxes) for p in example.parts)


def _phrase(text: str) -> str:
    """Phrase for the REC prompt, whose template adds the final period itself."""
    return text.strip().rstrip(".")


# --- tasks -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Task:
    """One task: which example record it takes, its prompt templates and its answer writer.

    ``fields`` maps an example to the ``str.format`` fields of the prompt templates.
    """

    name: str
    example: type
    prompts: tuple[str, ...]
    prompt_source: Literal["spec", "ours"]
    answer: Callable[[Example], str]
    fields: Callable[[Example], dict[str, str]] = lambda example: {}

    def turn(self, example: Example, rng: random.Random) -> tuple[str, str]:
        """(question, answer) for one example; the prompt is drawn from ``prompts`` with ``rng``."""
        if not isinstance(example, self.example):
            raise TypeError(f"task {self.name!r} takes {self.example.__name__}, "
                            f"got {type(example).__name__}")
        template = rng.choice(self.prompts) if len(self.prompts) > 1 else self.prompts[0]
        return template.format(**self.fields(example)), self.answer(example)


_TASK_LIST = (
    Task("vqa", QA, ("{question}\nAnswer the question using a single word or phrase.",), "spec",
         answer=lambda e: e.answer, fields=lambda e: {"question": e.question}),
    Task("unanswerable_vqa", QA,
         ("{question} When the provided information is insufficient, respond with 'Unanswerable'."
          "\nAnswer the question using a single word or phrase.",), "spec",
         answer=lambda e: e.answer, fields=lambda e: {"question": e.question}),
    Task("multiple_choice", Choice,
         ("{question}\n{options}\nAnswer with the option's letter from the given choices directly.",),
         "spec", answer=lambda e: LETTERS[e.answer],
         fields=lambda e: {"question": e.question, "options": _options(e)}),
    Task("short_caption", Caption, ("Provide a one-sentence caption for the provided image.",),
         "spec", answer=lambda e: e.text),
    Task("detailed_caption", Caption, ("Generate a detailed description about the image.",),
         "spec", answer=lambda e: e.text),
    Task("rec", Region,
         ("Please provide the bounding box coordinate of the region this sentence describes: "
          "{phrase}.",), "spec",
         answer=lambda e: format_boxes(e.boxes), fields=lambda e: {"phrase": _phrase(e.phrase)}),
    Task("reg", Region,
         ("Please provide a short description for the region {box}.",
          "Describe the region {box} in a few words.",
          "What is in the region {box}? Answer with a short phrase."), "ours",
         answer=lambda e: e.phrase.strip(), fields=lambda e: {"box": format_box(e.boxes[0])}),
    Task("grounded_caption", GroundedCaption,
         ("Describe the image concisely. Include the bounding box for each mentioned object.",),
         "spec", answer=_grounded_caption),
    Task("detection", Detections, ("Detect all objects shown in the image.",), "spec",
         answer=lambda e: format_detections(e.items)),
    Task("category_detection", Detections, ("Detect all {category} shown in the image.",), "spec",
         answer=lambda e: format_detections(e.items),
         fields=lambda e: {"category": plural(e.category or "object")}),
    Task("text_detection", Detections,
         ("Please detect all texts and provide their bounding box coordinate.",), "spec",
         answer=lambda e: format_detections(e.items)),
    Task("layout", Detections,
         ("Detect all layout elements (title, text, list, table and figure) in this document and "
          "provide their bounding box coordinates.",
          "Parse the layout of this document page: find every title, text block, list, table and "
          "figure, with its bounding box.",
          "Locate the titles, text blocks, lists, tables and figures in this document."), "ours",
         answer=lambda e: format_detections(e.items)),
    Task("pose", Pose, ("Detect the key points of the person in the region {box}.",), "spec",
         answer=lambda e: format_keypoints(e.keypoints),
         fields=lambda e: {"box": format_box(e.person)}),
)

TASKS: dict[str, Task] = {t.name: t for t in _TASK_LIST}
"""Single-turn tasks built from example records, by name."""

MULTIPLE_CHOICE_ANSWER_PREFIX = " The answer is"
"""SPHINX's ScienceQA evaluation pre-fills the assistant turn with this (spec 8.3)."""

FREE_FORM_TASKS = {"conversation": True, "dialogue": False}
"""Tasks whose turns come verbatim from the data (no prompt, no formatter) -> whether they take an image:
``conversation`` is LLaVA-style multi-turn chat about an image, ``dialogue`` is text only."""

LM_TASKS = {"caption_lm": True, "text_lm": False}
"""Pre-training tasks: plain language modelling without the chat template -> whether they take an
image. ``caption_lm`` is an image followed by its caption (loss on the caption and EOS),
``text_lm`` raw text (loss on every token and EOS); see :meth:`Processor.encode_lm`."""

TASK_NAMES = tuple(TASKS) + tuple(FREE_FORM_TASKS) + tuple(LM_TASKS)


def get_task(name: str) -> Task:
    if name not in TASKS:
        raise KeyError(f"unknown task {name!r}; known tasks: {', '.join(TASKS)}")
    return TASKS[name]


def make_turn(task: str, example: Example, rng: random.Random) -> tuple[str, str]:
    """(question, answer) for ``example`` under task ``task`` (see :meth:`Task.turn`)."""
    return get_task(task).turn(example, rng)


def sample_rng(seed: int, key: str) -> random.Random:
    """An RNG for one sample, fixed by (seed, key), so prompts do not depend on iteration order."""
    return random.Random(f"{seed}:{key}")
