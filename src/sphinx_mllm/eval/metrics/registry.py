"""Name -> metric function registry, and the small checks every metric shares.

Every registered metric is a pure function over plain Python values that returns a flat
``dict[str, float]``; rates are percentages in [0, 100] unless the docstring says otherwise.
"""

from __future__ import annotations

from typing import Callable, Sized

MetricFn = Callable[..., dict[str, float]]

METRICS: dict[str, MetricFn] = {}


def register(name: str) -> Callable[[MetricFn], MetricFn]:
    """Decorator: add ``fn`` to ``METRICS`` under ``name`` (names are unique)."""

    def add(fn: MetricFn) -> MetricFn:
        if name in METRICS:
            raise ValueError(f"metric {name!r} is already registered")
        METRICS[name] = fn
        return fn

    return add


def get_metric(name: str) -> MetricFn:
    """The metric registered as ``name``; ``KeyError`` lists the known names."""
    try:
        return METRICS[name]
    except KeyError:
        raise KeyError(f"unknown metric {name!r}; known: {sorted(METRICS)}") from None


def check_paired(predictions: Sized, references: Sized) -> int:
    """Raise unless both sides are non-empty and equally long; return the length."""
    if len(predictions) != len(references):
        raise ValueError(f"{len(predictions)} predictions but {len(references)} references")
    if len(predictions) == 0:
        raise ValueError("nothing to score: no predictions")
    return len(predictions)


def percent(numerator: float, denominator: float) -> float:
    """``100 * numerator / denominator``, and 0.0 when the denominator is 0."""
    return 100.0 * numerator / denominator if denominator else 0.0
