"""Result records of the statistics: small, frozen, JSON-ready through `to_dict()`."""

from __future__ import annotations

from dataclasses import asdict, dataclass

__all__ = ["CI", "PairedTest"]


@dataclass(frozen=True)
class CI:
    """A point estimate with a bootstrap confidence interval [low, high]."""

    estimate: float
    low: float
    high: float
    n_resamples: int
    confidence: float
    method: str
    statistic: str = "mean"
    seed: int = 0
    n: int = 0
    n_clusters: int | None = None

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


@dataclass(frozen=True)
class PairedTest:
    """A paired comparison of system A (e.g. base) and B (e.g. fine-tuned) on the same samples.

    `delta` is B minus A. `low`/`high` bound delta (bootstrap tests only); `b01` counts samples A got
    wrong and B right, `b10` the reverse (McNemar only).
    """

    method: str
    estimate_a: float
    estimate_b: float
    delta: float
    p_value: float
    n: int
    low: float | None = None
    high: float | None = None
    confidence: float | None = None
    n_resamples: int | None = None
    seed: int | None = None
    n_clusters: int | None = None
    b01: int | None = None
    b10: int | None = None

    def to_dict(self) -> dict[str, object]:
        return asdict(self)
