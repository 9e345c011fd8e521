"""Exact McNemar test on discordant pairs."""

import numpy as np
import pytest

from harness.errors import HarnessError
from harness.stats import binomial_two_sided_p, mcnemar


def test_identical_outcomes_give_p_one():
    a = [True, False, True, True]
    test = mcnemar(a, list(a))
    assert test.delta == 0.0 and test.p_value == 1.0
    assert test.b01 == 0 and test.b10 == 0


def test_discordant_counts_and_exact_p():
    a = [1, 1, 0, 0, 0, 0, 0, 1]
    b = [1, 0, 1, 1, 1, 1, 1, 1]
    test = mcnemar(a, b)
    assert (test.b01, test.b10) == (5, 1)
    assert test.p_value == pytest.approx(2 * (1 + 6) / 2**6)  # P(X <= 1), X ~ Bin(6, 1/2), doubled
    assert test.delta == pytest.approx(4 / 8)
    assert binomial_two_sided_p(5, 5) == pytest.approx(2 / 32)
    assert binomial_two_sided_p(3, 6) == 1.0
    assert binomial_two_sided_p(0, 0) == 1.0


def test_matches_scipy_binomtest():
    stats = pytest.importorskip("scipy.stats")
    for k, n in [(3, 10), (0, 7), (40, 100), (12, 13)]:
        assert binomial_two_sided_p(k, n) == pytest.approx(stats.binomtest(k, n, 0.5).pvalue)


def test_large_improvement_is_significant():
    rng = np.random.default_rng(10)
    a = (rng.random(200) < 0.3).astype(float)  # relaxed-accuracy style 0.0/1.0 values
    b = (rng.random(200) < 0.8).astype(float)
    test = mcnemar(a, b)
    assert test.p_value < 0.01
    assert test.delta == pytest.approx(b.mean() - a.mean())
    assert test.b01 > test.b10


def test_huge_n_does_not_overflow():
    n = 20_000
    assert 0.0 <= binomial_two_sided_p(n // 2 - 300, n) < 1e-4


def test_validation():
    with pytest.raises(HarnessError, match=r"a_correct\[1\] is 0.5"):
        mcnemar([1.0, 0.5], [1.0, 1.0])
    with pytest.raises(HarnessError, match="a_correct has 2 values but b_correct has 1"):
        mcnemar([True, False], [True])
    with pytest.raises(HarnessError, match="a_correct is empty"):
        mcnemar([], [])
