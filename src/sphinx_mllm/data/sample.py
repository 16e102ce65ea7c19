"""The one sample type every adapter yields, and the bookkeeping of skipped records."""

from __future__ import annotations

import logging
import random
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator, TypeVar

from ..conversation import Message
from ..media import image_size
from ..tasks import ImageFrame

log = logging.getLogger(__name__)

HUMAN_ROLES = ("human", "user")
ASSISTANT_ROLES = ("gpt", "assistant")


@dataclass(frozen=True)
class Sample:
    """One training conversation.

    ``image`` is the image file (None for text-only samples); boxes inside ``messages`` are in the
    normalised padded-square frame. ``task`` is a name from ``tasks.TASK_NAMES``; ``source`` is a
    stable id ``"<format>:<file>:<record>"`` that names where the sample came from.
    """

    image: Path | None
    messages: tuple[Message, ...]
    task: str
    source: str

    @property
    def num_chars(self) -> int:
        """Characters of all turns: the length key the sampler buckets by (spec 9.4)."""
        return sum(len(m.content) for m in self.messages)

    def to_json(self) -> dict:
        """LLaVA / LLaMA2-Accessory record (``from``: human/gpt), plus ``task`` and ``source``."""
        record: dict = {}
        if self.image is not None:
            record["image"] = str(Path(self.image).absolute())
        record["conversations"] = [
            {"from": "human" if m.role == "user" else "gpt", "value": m.content}
            for m in self.messages
        ]
        record.update(task=self.task, source=self.source)
        return record


class Malformed(ValueError):
    """A record that cannot become a sample; the message says why."""


T = TypeVar("T")
R = TypeVar("R")


class Skips:
    """Counts skipped records per file and logs one warning per skip naming file and record."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def skip(self, file: str | Path, record: object, reason: str) -> None:
        self.counts[str(file)] += 1
        log.warning("%s: skipped record %s: %s", file, record, reason)

    def guard(self, file: str | Path, record: object, convert: Callable[[], list[R]]) -> list[R]:
        """``convert()``, or ``[]`` (counted and logged) when the record is malformed.

        Malformed means missing or mistyped fields (the ``KeyError`` / ``TypeError`` /
        ``IndexError`` / ``AttributeError`` / ``ValueError`` that reading such a record raises),
        impossible values (:class:`Malformed`), or an unreadable image (``OSError``). These are
        counted and logged with the file and record, so an adapter bug shows up as a burst of
        skips with its error message, never as a silent drop.
        """
        try:
            return convert()
        except (Malformed, KeyError, TypeError, ValueError, IndexError, AttributeError,
                OSError) as err:
            self.skip(file, record, f"{type(err).__name__}: {err}")
            return []


def as_language_modelling(sample: Sample, task: str) -> Sample:
    """``sample`` as a pre-training sample of ``task`` (``tasks.LM_TASKS``): one assistant message
    holding the text to model.

    ``caption_lm`` keeps the image and takes the last answer as its caption; ``text_lm`` takes the
    whole conversation's text, one message per line, and needs a sample without an image.
    """
    if task == "caption_lm":
        if sample.image is None:
            raise Malformed("caption_lm needs an image")
        body = [m.content for m in sample.messages if m.role == "assistant"][-1:]
    elif task == "text_lm":
        if sample.image is not None:
            raise Malformed("text_lm takes text-only samples; this one has an image")
        body = [m.content for m in sample.messages if m.content]
    else:
        raise ValueError(f"unknown language-modelling task {task!r}; known: caption_lm, text_lm")
    if not body or not body[-1].strip():
        raise Malformed(f"{task}: no text to model")
    return Sample(sample.image, (Message("assistant", "\n".join(body)),), task, sample.source)


def pack_turns(samples: Iterable[Sample], turns: int, seed: int = 0) -> list[Sample]:
    """Several conversations about one image as one multi-turn conversation (LLaVA-style), up to
    ``turns`` each: the visual tokens and the system prompt are then paid once for several answers.

    Only samples with the same image and task are packed (a REG turn next to a REC turn would hand
    over the answer), and never two whose answers coincide (two expressions for one object would
    let the second box be copied from the first). Within an image the order is shuffled with
    ``seed``; packs come in the order their image first appears. Text-only samples pass unchanged.

    A later turn about another object of the same image can still be narrowed down by elimination
    (in a two-object scene the second REC box is the one not given yet). On the toy world, a model
    trained unpacked chose the named shape no more often (docs/toy-world-runs.md, "Fourteenth run").
    """
    if turns < 1:
        raise ValueError(f"turns must be >= 1, got {turns}")
    groups: dict[tuple, list[Sample]] = {}
    for i, sample in enumerate(samples):
        key = (sample.image, sample.task) if sample.image is not None else ("text", i)
        groups.setdefault(key, []).append(sample)
    rng = random.Random(seed)
    packed = []
    for group in groups.values():
        if len(group) == 1 or turns == 1:
            packed += group
            continue
        rng.shuffle(group)
        packs: list[list[Sample]] = []
        for sample in group:
            answers = _answers(sample)
            home = next((p for p in packs if len(p) < turns
                         and not answers & set().union(*map(_answers, p))), None)
            if home is None:
                packs.append([sample])
            else:
                home.append(sample)
        packed += [Sample(p[0].image, tuple(m for s in p for m in s.messages), p[0].task,
                          " + ".join(s.source for s in p)) for p in packs]
    return packed


def _answers(sample: Sample) -> set[str]:
    return {m.content for m in sample.messages if m.role == "assistant"}


def messages_from_pairs(pairs: list[tuple[str, str]]) -> tuple[Message, ...]:
    return tuple(m for q, a in pairs for m in (Message("user", q), Message("assistant", a)))


def image_frame(width: object, height: object, image: Path | None) -> ImageFrame:
    """Frame from the annotation's width/height when present, else from the image file header."""
    if isinstance(width, (int, float)) and isinstance(height, (int, float)) and width > 0 and height > 0:
        return ImageFrame(int(width), int(height))
    if image is None:
        raise Malformed("no image size in the record and no image file")
    # The header only; stored pixels, as the annotations (see Collator._image).
    return ImageFrame(*image_size(image, exif_orientation=False))


def text(value: object, what: str) -> str:
    """A non-empty stripped string field."""
    if not isinstance(value, str) or not value.strip():
        raise Malformed(f"{what} must be a non-empty string, got {value!r}")
    return value.strip()


def iter_guarded(file: Path, items: Iterable[tuple[str, T]], skips: Skips,
                 convert: Callable[[str, T], list[Sample]]) -> Iterator[Sample]:
    """``convert(record id, record)`` for each pair, skipping (and counting) malformed ones."""
    for key, item in items:
        yield from skips.guard(file, key, lambda: convert(key, item))
