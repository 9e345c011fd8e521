"""The metric plug-in pattern: one `Metric` record per metric, one registry.

A metric says how it is computed (`description`), which direction is better and which version of
its definition produced a number, so a stored result explains itself (lm-evaluation-harness style).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from harness.errors import HarnessError
from harness.plugins import Registry

__all__ = ["Metric", "METRICS", "register_metric", "get_metric", "metric_names", "SCALES"]

SCALES = ("fraction", "0-100")

PerSampleFn = Callable[[str, Sequence[str]], float]
AggregateFn = Callable[[Sequence[str], Sequence[Sequence[str]], Sequence[float] | None], float]
# Builds a function that recomputes the aggregate on a multiset of sample indices (bootstrap).
IndexedFn = Callable[[Sequence[str], Sequence[Sequence[str]]], Callable[[np.ndarray], float]]


@dataclass(frozen=True)
class Metric:
    """A named metric. Either per-sample (aggregate defaults to the mean) or corpus-level only.

    Bump `version` whenever the definition changes, so old and new numbers are never mixed.
    """

    name: str
    higher_is_better: bool
    version: str
    scale: str
    description: str
    per_sample_fn: PerSampleFn | None = None
    aggregate_fn: AggregateFn | None = None
    indexed_fn: IndexedFn | None = None

    def __post_init__(self) -> None:
        if not self.name:
            raise ValueError("a metric needs a name")
        if self.scale not in SCALES:
            raise ValueError(f"metric {self.name!r}: scale must be one of {SCALES}, got {self.scale!r}")
        if self.per_sample_fn is None and self.aggregate_fn is None:
            raise ValueError(f"metric {self.name!r}: needs per_sample_fn or aggregate_fn")

    @property
    def has_per_sample(self) -> bool:
        return self.per_sample_fn is not None

    def per_sample(self, prediction: str, references: Sequence[str]) -> float | None:
        """The sample's score, or None for corpus-level metrics (BLEU)."""
        if self.per_sample_fn is None:
            return None
        return float(self.per_sample_fn(prediction, references))

    def aggregate(
        self,
        predictions: Sequence[str],
        references_list: Sequence[Sequence[str]],
        per_sample_values: Sequence[float] | None = None,
    ) -> float:
        """The set score. Per-sample metrics: the mean of `per_sample_values` (computed if None)."""
        if self.aggregate_fn is not None:
            return float(self.aggregate_fn(predictions, references_list, per_sample_values))
        if per_sample_values is None:
            per_sample_values = [
                self.per_sample(p, r) for p, r in zip(predictions, references_list, strict=True)
            ]
        if len(per_sample_values) == 0:
            raise HarnessError(f"metric {self.name}: no samples to aggregate")
        return float(np.mean(np.asarray(per_sample_values, dtype=float)))

    def indexed(
        self,
        predictions: Sequence[str],
        references_list: Sequence[Sequence[str]],
        per_sample_values: Sequence[float] | None = None,
    ) -> Callable[[np.ndarray], float]:
        """A function `indices -> aggregate over those samples` (repeats allowed), for bootstrapping.

        Per-sample metrics take the mean of the selected values; corpus metrics (BLEU) re-aggregate
        their sufficient statistics, which is exact and fast.
        """
        if self.indexed_fn is not None:
            return self.indexed_fn(predictions, references_list)
        if self.per_sample_fn is None:
            preds, refs = list(predictions), list(references_list)
            return lambda idx: self.aggregate([preds[i] for i in idx], [refs[i] for i in idx])
        if per_sample_values is None:
            per_sample_values = [
                self.per_sample(p, r) for p, r in zip(predictions, references_list, strict=True)
            ]
        values = np.asarray(per_sample_values, dtype=float)
        return lambda idx: float(values[np.asarray(idx, dtype=np.intp)].mean())

    def info(self) -> dict[str, object]:
        """What to store next to a result so the number explains itself."""
        return {
            "higher_is_better": self.higher_is_better,
            "version": self.version,
            "scale": self.scale,
            "description": self.description,
        }


METRICS = Registry("metric")
"""The registry, in registration order (the plug-in pattern adapters and runners share: harness.plugins)."""


def register_metric(metric: Metric, *, replace: bool = False) -> Metric:
    """Add a metric to the registry; a second metric with the same name is a bug unless `replace`."""
    return METRICS.register(metric.name, metric, replace=replace)


def metric_names() -> tuple[str, ...]:
    return METRICS.names()


def get_metric(name: str) -> Metric:
    if name not in METRICS:  # registered names only: a metric's name is stored with every result
        raise HarnessError(f"unknown metric {name!r}; known metrics: {', '.join(METRICS.names()) or '(none)'}")
    return METRICS.get(name)
