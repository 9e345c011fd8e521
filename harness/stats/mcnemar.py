"""Exact McNemar test for paired right/wrong outcomes (e.g. per-sample relaxed accuracy)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from harness.errors import HarnessError
from harness.stats.resample import as_values
from harness.stats.results import PairedTest

__all__ = ["mcnemar", "binomial_two_sided_p"]


def _as_binary(values: Sequence[bool] | Sequence[float], name: str) -> np.ndarray:
    array = as_values(values, name)
    bad = np.flatnonzero((array != 0.0) & (array != 1.0))
    if bad.size:
        raise HarnessError(f"{name}[{bad[0]}] is {array[bad[0]]}; McNemar needs bool or 0/1 values")
    return array.astype(bool)


def binomial_two_sided_p(k: int, n: int) -> float:
    """Exact two-sided p of k successes in n fair coin flips: min(1, 2 * P(X <= min(k, n - k))).

    Summed in log space (log C(n, i) by cumulative log ratios), so large n costs O(n) and never
    overflows; relative error is around 1e-12.
    """
    if n == 0:
        return 1.0
    m = min(k, n - k)
    j = np.arange(1, m + 1, dtype=float)
    log_comb = np.concatenate(([0.0], np.cumsum(np.log(n - j + 1) - np.log(j))))
    log_terms = log_comb - n * np.log(2.0)
    top = log_terms.max()
    tail = float(np.exp(top) * np.exp(log_terms - top).sum())
    return min(1.0, 2.0 * tail)


def mcnemar(
    a_correct: Sequence[bool] | Sequence[float], b_correct: Sequence[bool] | Sequence[float]
) -> PairedTest:
    """Exact (binomial) McNemar test on the discordant pairs.

    b01: A wrong and B right; b10: A right and B wrong. Under the null both are equally likely, so
    b01 ~ Binomial(b01 + b10, 1/2). No discordant pairs gives p = 1.
    """
    a, b = _as_binary(a_correct, "a_correct"), _as_binary(b_correct, "b_correct")
    if len(a) != len(b):
        raise HarnessError(f"a_correct has {len(a)} values but b_correct has {len(b)}; need equal lengths")
    b01 = int(np.count_nonzero(~a & b))
    b10 = int(np.count_nonzero(a & ~b))
    return PairedTest(
        method="exact McNemar (two-sided binomial test on discordant pairs)",
        estimate_a=float(a.mean()),
        estimate_b=float(b.mean()),
        delta=(b01 - b10) / len(a),
        p_value=binomial_two_sided_p(b01, b01 + b10),
        n=len(a),
        b01=b01,
        b10=b10,
    )
