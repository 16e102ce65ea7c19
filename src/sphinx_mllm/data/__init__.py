"""Data: adapters for real dataset formats -> one Sample type; mixtures, sampler and collate."""

from .adapters import ADAPTERS, FORMATS, Adapter, read_samples
from .collate import Batch, Collator
from .convert import ConvertReport, SourceStats, convert, format_stats, mixture_stats, write_jsonl
from .mixture import (Mixture, SourceConfig, TypeGroupedBatchSampler, load_mixture,
                      read_mixture_config)
from .sample import Sample, Skips

__all__ = [
    "ADAPTERS", "FORMATS", "Adapter", "Batch", "Collator", "ConvertReport", "Mixture", "Sample",
    "Skips", "SourceConfig", "SourceStats", "TypeGroupedBatchSampler", "convert", "format_stats",
    "load_mixture", "mixture_stats", "read_mixture_config", "read_samples", "write_jsonl",
]
