"""Bootstrap intervals and paired bootstrap tests: honest, clustered, deterministic."""

import json

import numpy as np
import pytest

from harness.errors import HarnessError
from harness.stats import bootstrap_ci, bootstrap_ci_corpus, paired_bootstrap, paired_bootstrap_corpus
from harness.stats.resample import layout_for


def _bernoulli(n, p, seed):
    return (np.random.default_rng(seed).random(n) < p).astype(float)


def test_ci_contains_mean_and_narrows_with_n():
    small = bootstrap_ci(_bernoulli(100, 0.5, 1))
    large = bootstrap_ci(_bernoulli(10_000, 0.5, 2))
    for ci in (small, large):
        assert ci.low <= ci.estimate <= ci.high
        assert ci.n_resamples == 2000 and ci.confidence == 0.95
        assert ci.method == "percentile bootstrap" and ci.n_clusters is None
    assert (large.high - large.low) < (small.high - small.low) / 5
    # about the normal-approximation width for n = 10000, p = 0.5
    assert large.high - large.low == pytest.approx(2 * 1.96 * 0.5 / 100, rel=0.15)


def test_clustered_ci_wider_when_clusters_perfectly_correlated():
    cluster_values = _bernoulli(50, 0.5, 3)
    values = np.repeat(cluster_values, 10)
    clusters = [f"chart{i}" for i in range(50) for _ in range(10)]
    plain = bootstrap_ci(values)
    clustered = bootstrap_ci(values, clusters=clusters)
    assert clustered.method == "percentile bootstrap, clustered by image"
    assert clustered.n_clusters == 50 and clustered.n == 500
    assert clustered.estimate == plain.estimate
    assert (clustered.high - clustered.low) > 2 * (plain.high - plain.low)


def test_deterministic_for_a_seed():
    values = _bernoulli(300, 0.4, 4)
    clusters = [str(i // 3) for i in range(300)]
    assert bootstrap_ci(values, clusters, seed=7) == bootstrap_ci(values, clusters, seed=7)
    assert bootstrap_ci(values, seed=7) != bootstrap_ci(values, seed=8)
    a, b = _bernoulli(300, 0.4, 5), _bernoulli(300, 0.5, 6)
    assert paired_bootstrap(a, b, clusters, seed=3) == paired_bootstrap(a, b, clusters, seed=3)


def test_corpus_variant_matches_mean_variant():
    values = _bernoulli(120, 0.3, 8)
    clusters = [str(i % 17) for i in range(120)]
    for cl in (None, clusters):
        direct = bootstrap_ci(values, cl, n_resamples=500, seed=2)
        corpus = bootstrap_ci_corpus(len(values), lambda idx: values[idx].mean(), cl, n_resamples=500, seed=2)
        assert corpus.estimate == pytest.approx(direct.estimate)
        assert corpus.low == pytest.approx(direct.low) and corpus.high == pytest.approx(direct.high)
        assert corpus.statistic == "corpus"


def test_median_statistic():
    values = [float(v) for v in range(1, 50)] + [1000.0]
    ci = bootstrap_ci(values, statistic="median", n_resamples=300)
    assert ci.estimate == 25.5 and ci.statistic == "median"
    assert ci.low <= 25.5 <= ci.high < 40.0
    assert bootstrap_ci(values, clusters=[str(i % 5) for i in range(50)], statistic="median").n_clusters == 5


def test_identical_systems_delta_zero_p_one():
    a = _bernoulli(200, 0.5, 9)
    test = paired_bootstrap(a, a.copy())
    assert test.delta == 0.0 and test.p_value == 1.0
    assert test.low == 0.0 and test.high == 0.0
    clustered = paired_bootstrap(a, a.copy(), clusters=[str(i // 4) for i in range(200)])
    assert clustered.p_value == 1.0
    corpus = paired_bootstrap_corpus(200, lambda idx: (a[idx].mean(), a[idx].mean()))
    assert corpus.delta == 0.0 and corpus.p_value == 1.0


def test_large_improvement_is_significant():
    rng = np.random.default_rng(10)
    a = (rng.random(200) < 0.3).astype(float)
    b = (rng.random(200) < 0.8).astype(float)
    test = paired_bootstrap(a, b)
    assert test.delta == pytest.approx(b.mean() - a.mean())
    assert test.delta > 0.3
    assert test.p_value < 0.01
    assert test.p_value >= 1 / (test.n_resamples + 1)
    assert 0 < test.low <= test.delta <= test.high
    corpus = paired_bootstrap_corpus(200, lambda idx: (a[idx].mean(), b[idx].mean()))
    assert corpus.p_value < 0.01 and corpus.delta == pytest.approx(test.delta)


def test_no_real_difference_is_not_significant():
    a = _bernoulli(400, 0.5, 11)
    b = np.roll(a, 1)  # same accuracy up to one sample, unrelated per-sample pattern
    test = paired_bootstrap(a, b)
    assert test.p_value > 0.5


def test_to_dict_is_json_ready():
    ci = bootstrap_ci([0.0, 1.0, 1.0], n_resamples=50)
    stored = json.loads(json.dumps(ci.to_dict()))
    assert stored["n_resamples"] == 50 and stored["method"] == "percentile bootstrap"
    test = paired_bootstrap([0.0, 1.0], [1.0, 1.0], n_resamples=50)
    assert json.loads(json.dumps(test.to_dict()))["n_resamples"] == 50


def test_cluster_expansion_takes_all_samples_of_each_drawn_cluster():
    layout = layout_for(4, ["a", "b", "a", "c"])
    assert layout.n_units == 3
    assert layout.indices(np.array([0, 0, 2])).tolist() == [0, 2, 0, 2, 3]
    assert layout.indices(np.array([1])).tolist() == [1]


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: bootstrap_ci([]), "values is empty"),
        (lambda: bootstrap_ci([1.0, float("nan")]), r"values\[1\] is nan"),
        (lambda: bootstrap_ci([1.0, 2.0], clusters=["a"]), "clusters has 1 entries but there are 2 samples"),
        (lambda: bootstrap_ci([1.0], n_resamples=0), "n_resamples must be a positive integer"),
        (lambda: bootstrap_ci([1.0], confidence=95), "confidence must be between 0 and 1"),
        (lambda: bootstrap_ci([1.0], statistic="max"), "statistic must be one of"),
        (lambda: paired_bootstrap([1.0, 0.0], [1.0]), "a has 2 values but b has 1"),
        (lambda: bootstrap_ci_corpus(0, lambda idx: 0.0), "n must be a positive number"),
    ],
)
def test_input_validation(call, message):
    with pytest.raises(HarnessError, match=message):
        call()
