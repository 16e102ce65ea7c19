"""Data: adapters for real dataset formats -> one Sample type; mixtures, sampler and collate."""

from .adapters import ADAPTERS, FORMATS, Adapter, read_samples
from .sample import Sample, Skips

__all__ = ["ADAPTERS", "FORMATS", "Adapter", "Sample", "Skips", "read_samples"]
