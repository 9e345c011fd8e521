"""Percentile bootstrap intervals and paired bootstrap tests, optionally clustered.

ChartQA asks several questions per chart, and answers about one chart are correlated; resampling
whole charts (clusters) instead of single questions gives intervals that are not falsely narrow.
Everything is deterministic for a seed (numpy PCG64).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence

import numpy as np

from harness.errors import HarnessError
from harness.stats.resample import Layout, as_values, check_options, layout_for
from harness.stats.results import CI, PairedTest

__all__ = ["bootstrap_ci", "bootstrap_ci_corpus", "paired_bootstrap", "paired_bootstrap_corpus"]

STATISTICS = ("mean", "median")


def _method(base: str, layout: Layout, cluster_label: str) -> str:
    return f"{base}, clustered by {cluster_label}" if layout.clustered else base


def _interval(replicates: np.ndarray, confidence: float) -> tuple[float, float]:
    alpha = 1.0 - confidence
    low, high = np.quantile(replicates, [alpha / 2, 1 - alpha / 2])
    return float(low), float(high)


def _mean_replicates(
    values: np.ndarray, layout: Layout, rng: np.random.Generator, n_resamples: int
) -> np.ndarray:
    """Means of the resampled sets, from per-unit sums and sizes (no index expansion needed)."""
    sums = np.bincount(layout.codes, weights=values, minlength=layout.n_units)
    out = np.empty(n_resamples)
    pos = 0
    for draws in layout.unit_draws(rng, n_resamples):
        out[pos : pos + len(draws)] = sums[draws].sum(axis=1) / layout.sizes[draws].sum(axis=1)
        pos += len(draws)
    return out


def _indexed_replicates(
    compute: Callable[[np.ndarray], object], layout: Layout, rng: np.random.Generator, n_resamples: int
) -> list:
    return [compute(layout.indices(row)) for draws in layout.unit_draws(rng, n_resamples) for row in draws]


def _check_n(n: int) -> None:
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 1:
        raise HarnessError(f"n must be a positive number of samples, got {n!r}")


def _centered_p_value(replicates: np.ndarray, delta: float) -> float:
    """Two-sided p from the null-centered bootstrap: (1 + #{|d* - d| >= |d|}) / (B + 1).

    Shifting the bootstrap distribution of the difference to mean zero approximates the null; the +1
    keeps p >= 1/(B + 1), since B resamples cannot show anything rarer. delta == 0 gives p = 1.
    """
    extreme = int(np.count_nonzero(np.abs(replicates - delta) >= abs(delta)))
    return min(1.0, (1 + extreme) / (len(replicates) + 1))


def bootstrap_ci(
    values: Sequence[float],
    clusters: Sequence[Hashable] | None = None,
    n_resamples: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
    statistic: str = "mean",
    cluster_label: str = "image",
) -> CI:
    """Percentile bootstrap CI of the mean (or median) of per-sample values.

    With `clusters` (one id per sample, e.g. the chart image), whole clusters are drawn with
    replacement and all their samples are taken.
    """
    array = as_values(values)
    check_options(n_resamples, confidence)
    if statistic not in STATISTICS:
        raise HarnessError(f"statistic must be one of {', '.join(STATISTICS)}, got {statistic!r}")
    layout = layout_for(len(array), clusters)
    rng = np.random.default_rng(seed)
    if statistic == "mean":
        estimate = float(array.mean())
        replicates = _mean_replicates(array, layout, rng, n_resamples)
    else:
        estimate = float(np.median(array))
        replicates = np.asarray(
            _indexed_replicates(lambda idx: np.median(array[idx]), layout, rng, n_resamples), dtype=float
        )
    return _ci(estimate, replicates, layout, statistic, n_resamples, confidence, seed, cluster_label)


def bootstrap_ci_corpus(
    n: int,
    compute: Callable[[np.ndarray], float],
    clusters: Sequence[Hashable] | None = None,
    n_resamples: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
    cluster_label: str = "image",
) -> CI:
    """Percentile bootstrap CI of a corpus statistic (e.g. BLEU) recomputed on resampled indices.

    `compute(indices)` gets an int array of sample indices (repeats allowed; all of 0..n-1 for the
    point estimate) and returns the statistic of that multiset of samples.
    """
    _check_n(n)
    check_options(n_resamples, confidence)
    layout = layout_for(n, clusters)
    rng = np.random.default_rng(seed)
    estimate = float(compute(np.arange(n)))
    replicates = np.asarray(_indexed_replicates(compute, layout, rng, n_resamples), dtype=float)
    return _ci(estimate, replicates, layout, "corpus", n_resamples, confidence, seed, cluster_label)


_PAIRED_METHOD = (
    "paired percentile bootstrap of b - a; two-sided p = (1 + #{|d* - d| >= |d|}) / (B + 1) (null-centered)"
)


def paired_bootstrap(
    a: Sequence[float],
    b: Sequence[float],
    clusters: Sequence[Hashable] | None = None,
    n_resamples: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
    cluster_label: str = "image",
) -> PairedTest:
    """Is B's mean different from A's on the same samples? delta = mean(b) - mean(a).

    Resamples samples (or clusters) once for both systems, so the pairing is kept.
    """
    a_values, b_values = as_values(a, "a"), as_values(b, "b")
    if len(a_values) != len(b_values):
        raise HarnessError(
            f"a has {len(a_values)} values but b has {len(b_values)}; pairing needs equal lengths"
        )
    check_options(n_resamples, confidence)
    layout = layout_for(len(a_values), clusters)
    rng = np.random.default_rng(seed)
    differences = b_values - a_values
    delta = float(differences.mean())
    replicates = _mean_replicates(differences, layout, rng, n_resamples)
    return _paired(float(a_values.mean()), float(b_values.mean()), delta, replicates, layout, n_resamples,
                   confidence, seed, cluster_label)


def paired_bootstrap_corpus(
    n: int,
    compute: Callable[[np.ndarray], tuple[float, float]],
    clusters: Sequence[Hashable] | None = None,
    n_resamples: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
    cluster_label: str = "image",
) -> PairedTest:
    """Paired bootstrap for corpus statistics: `compute(indices) -> (value_a, value_b)` on one resample."""
    _check_n(n)
    check_options(n_resamples, confidence)
    layout = layout_for(n, clusters)
    rng = np.random.default_rng(seed)
    value_a, value_b = (float(v) for v in compute(np.arange(n)))
    delta = value_b - value_a
    pairs = _indexed_replicates(compute, layout, rng, n_resamples)
    replicates = np.asarray([float(vb) - float(va) for va, vb in pairs], dtype=float)
    return _paired(value_a, value_b, delta, replicates, layout, n_resamples, confidence, seed, cluster_label)


def _ci(estimate: float, replicates: np.ndarray, layout, statistic: str, n_resamples: int, confidence: float,
        seed: int, cluster_label: str) -> CI:
    low, high = _interval(replicates, confidence)
    return CI(
        estimate=estimate,
        low=low,
        high=high,
        n_resamples=n_resamples,
        confidence=confidence,
        method=_method("percentile bootstrap", layout, cluster_label),
        statistic=statistic,
        seed=seed,
        n=layout.n,
        n_clusters=layout.n_units if layout.clustered else None,
    )


def _paired(estimate_a: float, estimate_b: float, delta: float, replicates: np.ndarray, layout, n_resamples: int,
            confidence: float, seed: int, cluster_label: str) -> PairedTest:
    low, high = _interval(replicates, confidence)
    return PairedTest(
        method=_method(_PAIRED_METHOD, layout, cluster_label),
        estimate_a=estimate_a,
        estimate_b=estimate_b,
        delta=delta,
        p_value=_centered_p_value(replicates, delta),
        n=layout.n,
        low=low,
        high=high,
        confidence=confidence,
        n_resamples=n_resamples,
        seed=seed,
        n_clusters=layout.n_units if layout.clustered else None,
    )
