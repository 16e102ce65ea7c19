"""Library side of ``sphinx-mllm data convert`` and ``sphinx-mllm data stats``."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import numpy as np

from ..config import SphinxConfig
from ..processing import Processor
from ..tokenizer import Tokenizer
from .adapters import read_samples
from .files import written
from .mixture import load_mixture, read_mixture_config
from .sample import Sample, Skips


@dataclass(frozen=True)
class ConvertReport:
    written: int
    skipped: dict[str, int]


def write_jsonl(samples: Iterable[Sample], out: str | Path) -> int:
    """Write samples as JSONL records (:meth:`Sample.to_json`); returns how many were written.

    The file appears under its name only when complete (written to ``OUT.tmp``, then renamed).
    """
    count = 0
    with written(Path(out)) as tmp, open(tmp, "w", encoding="utf-8") as f:
        for sample in samples:
            f.write(json.dumps(sample.to_json(), ensure_ascii=False) + "\n")
            count += 1
    return count


def convert(format: str, root: str | Path, out: str | Path, *, images: str | Path | None = None,
            split: str | None = None, seed: int = 0) -> ConvertReport:
    """Convert one local dataset to conversation JSONL (readable again by the ``llava`` adapter)."""
    skips = Skips()
    written = write_jsonl(read_samples(format, root, split=split, images=images, seed=seed,
                                       skips=skips), out)
    return ConvertReport(written, dict(skips.counts))


@dataclass(frozen=True)
class SourceStats:
    """Counts, share of the draws and token lengths (visual placeholders included) of one mixture
    source. ``share`` is the expected fraction of an epoch's draws that come from it: its weight
    times its samples over the same sum for every source (``TypeGroupedBatchSampler``)."""

    name: str
    type: str
    samples: int
    skipped: int
    weight: float
    share: float
    percentiles: dict[int, float]


PERCENTILES = (50, 90, 99, 100)


def mixture_stats(config: str | Path, tokenizer: Tokenizer, preset: str,
                  seed: int = 0) -> list[SourceStats]:
    """Per-source sample and skip counts, weights and shares of the draws, and token-length
    percentiles for ``preset``."""
    processor = Processor(tokenizer, SphinxConfig.from_name(preset))
    mixture = load_mixture(read_mixture_config(config), seed)
    lengths: dict[int, list[int]] = {i: [] for i in range(len(mixture.sources))}
    for sample, source in zip(mixture.samples, mixture.source_index):
        encoded = processor.encode_training(sample.messages, sample.image is not None)
        lengths[source].append(len(encoded.input_ids))
    mass = [source.weight * len(lengths[i]) for i, source in enumerate(mixture.sources)]
    total = sum(mass) or 1
    stats = []
    for i, source in enumerate(mixture.sources):
        values = np.asarray(lengths[i] or [0])
        stats.append(SourceStats(source.name, source.type, len(lengths[i]), mixture.skips[i].total,
                                 source.weight, mass[i] / total,
                                 {p: float(np.percentile(values, p)) for p in PERCENTILES}))
    return stats


def format_stats(stats: list[SourceStats]) -> str:
    """A plain-text table of :func:`mixture_stats`."""
    head = (["source", "type", "samples", "skipped", "weight", "draws"]
            + [f"p{p}" for p in PERCENTILES])
    rows = [[s.name, s.type, str(s.samples), str(s.skipped), f"{s.weight:g}", f"{s.share:.1%}"]
            + [f"{s.percentiles[p]:.0f}" for p in PERCENTILES] for s in stats]
    widths = [max(len(r[c]) for r in [head] + rows) for c in range(len(head))]
    return "\n".join("  ".join(v.ljust(w) for v, w in zip(r, widths)).rstrip()
                     for r in [head] + rows)
