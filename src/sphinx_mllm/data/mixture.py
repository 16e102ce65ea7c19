"""Data mixtures: the YAML ``META`` config, the loaded mixture, and the type-grouped sampler.

YAML (LLaMA2-Accessory's schema, spec 9.3, plus ``format``, ``split`` and ``weight``)::

    META:
      - path: annotations/llava_v1_5_mix665k.json   # annotation file, or the dataset directory
        type: image_text                            # group key: one type per global batch
        root: /data/images                          # optional: image folder / prefix
        ratio: 0.5                                  # optional: fixed random subsample (seed 0)
      - path: /data/coco
        type: image_text
        format: coco-instances                      # optional adapter name (default: llava)
        split: train2017                            # optional: the adapter's split
        weight: 2.0                                 # optional: expected draws per item per epoch
      - path: /data/laion/captions.jsonl
        type: image_text
        task: caption_lm                            # optional: pre-training (caption_lm / text_lm)
      - path: /data/refcoco
        type: image_text
        format: refcoco
        turns: 4                                    # optional: up to 4 same-image samples per item

``turns`` packs samples about one image into multi-turn conversations (``sample.pack_turns``);
``weight`` then counts packed items.

Relative paths are resolved against the YAML file's folder, never the working directory.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Sequence

import yaml

from ..tasks import LM_TASKS
from .adapters import FORMATS, read_samples
from .sample import Sample, Skips, as_language_modelling, pack_turns

# --- config ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SourceConfig:
    """One ``META`` entry; ``path`` is the adapter's root, ``root`` its image folder."""

    path: Path
    type: str
    format: str = "llava"
    root: Path | None = None
    split: str | None = None
    ratio: float = 1.0
    weight: float = 1.0
    task: str | None = None  # a language-modelling task (tasks.LM_TASKS) replacing the chat turns
    turns: int = 1  # same-image samples packed into one conversation (sample.pack_turns)

    @property
    def name(self) -> str:
        return f"{self.format}:{self.path.name}" + (f":{self.split}" if self.split else "")


_KEYS = {"path", "type", "format", "root", "split", "ratio", "weight", "task", "turns"}


def _source(entry: object, base: Path, index: int) -> SourceConfig:
    if not isinstance(entry, dict) or "path" not in entry or "type" not in entry:
        raise ValueError(f"META[{index}] needs at least 'path' and 'type', got {entry!r}")
    unknown = set(entry) - _KEYS
    if unknown:
        raise ValueError(f"META[{index}] has unknown keys {sorted(unknown)}; known: {sorted(_KEYS)}")
    fmt = entry.get("format", "llava")
    if fmt not in FORMATS:
        raise ValueError(f"META[{index}]: unknown format {fmt!r}; known: {', '.join(FORMATS)}")
    ratio, weight = float(entry.get("ratio", 1.0)), float(entry.get("weight", 1.0))
    if not 0 < ratio <= 1 or weight < 0:
        raise ValueError(f"META[{index}]: ratio must be in (0, 1] and weight >= 0")
    task = entry.get("task")
    if task is not None and task not in LM_TASKS:
        raise ValueError(f"META[{index}]: task must be one of {sorted(LM_TASKS)}, got {task!r}")
    turns = entry.get("turns", 1)
    if not isinstance(turns, int) or turns < 1 or (turns > 1 and task is not None):
        raise ValueError(f"META[{index}]: turns must be an integer >= 1, and 1 with a "
                         f"language-modelling task, got {turns!r}")
    root = entry.get("root")
    return SourceConfig(base / entry["path"], str(entry["type"]), fmt,
                        base / root if root else None, entry.get("split"), ratio, weight, task,
                        turns)


def read_mixture_config(path: str | Path) -> list[SourceConfig]:
    """Parse and validate a data config YAML (see the module docstring)."""
    path = Path(path)
    data = yaml.safe_load(path.read_text())
    if not isinstance(data, dict) or not isinstance(data.get("META"), list):
        raise ValueError(f"{path}: expected a top-level 'META' list")
    return [_source(e, path.parent, i) for i, e in enumerate(data["META"])]


# --- loaded mixture ----------------------------------------------------------------------------


@dataclass
class Mixture:
    """All samples of all sources in memory, with each sample's type, weight and source index.

    It is a map-style dataset: ``mixture[i]`` is a :class:`Sample`.
    """

    sources: list[SourceConfig]
    samples: list[Sample] = field(default_factory=list)
    source_index: list[int] = field(default_factory=list)
    skips: list[Skips] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> Sample:
        return self.samples[index]

    @property
    def types(self) -> list[str]:
        """The sampler's group key of each sample: its source's ``type``; a type that holds both
        image and text-only samples is split (``"<type>/text"`` for the text-only ones), so that
        no global batch mixes them: under FSDP every rank must touch the same parameters."""
        declared = [self.sources[s].type for s in self.source_index]
        kinds: dict[str, set[bool]] = {}
        for kind, sample in zip(declared, self.samples):
            kinds.setdefault(kind, set()).add(sample.image is not None)
        return [kind + "/text" if len(kinds[kind]) == 2 and sample.image is None else kind
                for kind, sample in zip(declared, self.samples)]

    @property
    def weights(self) -> list[float]:
        return [self.sources[s].weight for s in self.source_index]

    @property
    def lengths(self) -> list[int]:
        return [s.num_chars for s in self.samples]


def load_mixture(sources: Sequence[SourceConfig], seed: int = 0) -> Mixture:
    """Read every source; ``ratio`` keeps a fixed random subset (seed 0, as Accessory does)."""
    mixture = Mixture(list(sources))
    for index, source in enumerate(sources):
        skips = Skips()
        samples = list(read_samples(source.format, source.path, split=source.split,
                                    images=source.root, seed=seed, skips=skips))
        if source.task is not None:
            samples = [lm for s in samples for lm in skips.guard(
                source.path, s.source, lambda s=s: [as_language_modelling(s, source.task)])]
        if source.ratio < 1:
            kept = sorted(random.Random(0).sample(range(len(samples)),
                                                  int(len(samples) * source.ratio)))
            samples = [samples[i] for i in kept]
        if source.turns > 1:
            samples = pack_turns(samples, source.turns, seed)
        mixture.samples += samples
        mixture.source_index += [index] * len(samples)
        mixture.skips.append(skips)
    return mixture


# --- sampler -----------------------------------------------------------------------------------


class TypeGroupedBatchSampler:
    """Micro-batches of indices for one data-parallel rank, every global batch within one type.

    Per epoch (spec 9.4, plus weights): each item is drawn ``floor(w)`` times plus once more with
    probability ``w - floor(w)``; draws are grouped by type and sorted by length (length
    bucketing), cut into global batches of ``batch_size * world_size * accum`` (incomplete tails
    dropped), and the global batches are shuffled with ``seed + epoch``. Global batch ``g`` is
    consumed as ``accum`` steps; at each step rank ``r`` takes ``batch_size`` consecutive
    indices. Everything is a pure function of (seed, epoch), so resuming needs only the position.
    """

    def __init__(self, types: Sequence[str], lengths: Sequence[int], batch_size: int, *,
                 weights: Sequence[float] | None = None, world_size: int = 1, rank: int = 0,
                 accum: int = 1, seed: int = 0, epoch: int = 0, start: int = 0):
        if not len(types) == len(lengths) == len(weights if weights is not None else types):
            raise ValueError("types, lengths and weights must have one entry per item")
        if not 0 <= rank < world_size or batch_size < 1 or accum < 1:
            raise ValueError("need batch_size >= 1, accum >= 1 and 0 <= rank < world_size")
        self.types, self.lengths = list(types), list(lengths)
        self.weights = list(weights) if weights is not None else [1.0] * len(self.types)
        self.batch_size, self.world_size, self.rank, self.accum = batch_size, world_size, rank, accum
        self.seed = seed
        self.set_epoch(epoch, start)

    @property
    def global_batch(self) -> int:
        return self.batch_size * self.world_size * self.accum

    def set_epoch(self, epoch: int, start: int = 0) -> None:
        """Begin ``epoch`` after its first ``start`` micro-batches (of this rank)."""
        self.epoch, self.start = epoch, start
        self._plan = self._global_batches(epoch)

    def state_dict(self, consumed: int = 0) -> dict:
        """Position after ``consumed`` more micro-batches than ``start`` (count those the trainer
        finished, not those a DataLoader prefetched)."""
        return {"seed": self.seed, "epoch": self.epoch, "start": self.start + consumed}

    def load_state_dict(self, state: dict) -> None:
        if state["seed"] != self.seed:
            raise ValueError(f"sampler state was saved with seed {state['seed']}, not {self.seed}")
        self.set_epoch(state["epoch"], state["start"])

    def _draws(self, rng: random.Random) -> list[int]:
        draws = []
        for index, weight in enumerate(self.weights):
            whole = math.floor(weight)
            draws += [index] * (whole + (rng.random() < weight - whole))
        return draws

    def _global_batches(self, epoch: int) -> list[list[int]]:
        rng = random.Random(self.seed + epoch)
        groups: dict[str, list[int]] = {}
        for index in self._draws(rng):
            groups.setdefault(self.types[index], []).append(index)
        batches = []
        g = self.global_batch
        for kind in sorted(groups):
            items = groups[kind]
            if len(items) % g:  # drop a random remainder, not always the longest items
                items = rng.sample(items, len(items) - len(items) % g)
            items = sorted(items, key=lambda i: (self.lengths[i], i))
            batches += [items[i:i + g] for i in range(0, len(items) - g + 1, g)]
        rng.shuffle(batches)
        return batches

    def _micro_batches(self) -> Iterator[list[int]]:
        step = self.batch_size * self.world_size
        lo = self.rank * self.batch_size
        for batch in self._plan:
            for a in range(self.accum):
                yield batch[a * step + lo:a * step + lo + self.batch_size]

    def __len__(self) -> int:
        return max(len(self._plan) * self.accum - self.start, 0)

    def __iter__(self) -> Iterator[list[int]]:
        for position, micro in enumerate(self._micro_batches()):
            if position >= self.start:
                yield micro
