"""Leaderboard statistics on constructed data with known answers."""

from __future__ import annotations

import json

import pytest
from test_leaderboard_fixtures import make_samples, write_results

from harness.leaderboard.analyze import analyze, to_json
from harness.leaderboard.load import collect
from harness.leaderboard.stats import StatsOptions, clusters_for, entry_cis, group_accuracy, pair_tests

METRICS = ["relaxed_accuracy", "exact_match", "rougeL", "bleu"]
OPTIONS = StatsOptions(n_resamples=500, seed=7)


def test_identical_predictions_give_zero_delta_and_p_one():
    samples = make_samples(right={0, 1, 5, 9, 13})
    tests = pair_tests(samples, [dict(s) for s in samples], METRICS, OPTIONS)
    assert set(tests) == set(METRICS)
    for name, t in tests.items():
        assert t.delta == 0.0, name
        assert t.p_value == 1.0, name
        assert t.estimate_a == t.estimate_b


def test_large_improvement_is_significant():
    n = 60
    base = make_samples(n_charts=n, per_chart=1, right=set(range(0, n, 10)), sentences=True)  # 10% right
    tuned = make_samples(n_charts=n, per_chart=1, right={i for i in range(n) if i % 10 != 9}, sentences=True)
    tests = pair_tests(base, tuned, METRICS, OPTIONS)
    for name in METRICS:
        assert tests[name].p_value < 0.01, name
        assert tests[name].delta > (20 if name == "bleu" else 0.5), name
    acc = tests["relaxed_accuracy"]
    assert "McNemar" in acc.method and acc.b01 == 48 and acc.b10 == 0
    assert abs(acc.delta - 0.8) < 1e-12
    assert acc.low is not None and acc.low > 0.6  # the bootstrap interval of the difference
    assert "bootstrap" in tests["rougeL"].method and tests["rougeL"].b01 is None


def test_pairing_uses_shared_sample_ids_in_order():
    base = make_samples(right=set())
    tuned = list(reversed(make_samples(right=set(range(24)))))[:20]  # shuffled and fewer
    t = pair_tests(base, tuned, ["relaxed_accuracy"], OPTIONS)["relaxed_accuracy"]
    assert t.n == 20 and t.b01 == 20 and t.b10 == 0


def test_intervals_are_deterministic_for_a_seed_and_clustered_by_chart():
    samples = make_samples(n_charts=8, per_chart=3)
    assert clusters_for(samples) == [s["image_id"] for s in samples]
    first = entry_cis(samples, METRICS, OPTIONS)
    again = entry_cis(samples, METRICS, OPTIONS)
    other = entry_cis(samples, METRICS, StatsOptions(n_resamples=500, seed=8))
    assert {k: v.to_dict() for k, v in first.items()} == {k: v.to_dict() for k, v in again.items()}
    assert first["relaxed_accuracy"].to_dict() != other["relaxed_accuracy"].to_dict()
    ci = first["relaxed_accuracy"]
    assert ci.n_resamples == 500 and ci.seed == 7 and ci.n_clusters == 8 and "clustered" in ci.method
    assert ci.low <= ci.estimate <= ci.high
    assert first["bleu"].statistic == "corpus"


def test_one_question_per_chart_is_not_clustered():
    samples = make_samples(n_charts=10, per_chart=1)
    assert clusters_for(samples) is None
    assert entry_cis(samples, ["relaxed_accuracy"], OPTIONS)["relaxed_accuracy"].n_clusters is None


def test_accuracy_by_question_type():
    samples = make_samples(right={i for i in range(24) if i % 3 == 0})  # every "value" question right
    groups = group_accuracy(samples, "question_type", "relaxed_accuracy", OPTIONS)
    assert groups["value"].estimate == 1.0 and groups["largest"].estimate == 0.0
    by_answer = group_accuracy(samples, "answer_type", "relaxed_accuracy", OPTIONS)
    assert set(by_answer) == {"numeric", "text"}


def test_page_statistics_record_resamples_and_pairs(tmp_path):
    write_results(tmp_path / "r", models=("alpha",), batch_sizes=(1, 4))
    entries = collect([tmp_path / "r"])
    stats = to_json(analyze(entries, StatsOptions(n_resamples=300, seed=3)))
    assert stats["statistics"] == {"n_resamples": 300, "confidence": 0.95, "seed": 3}
    assert [e["variant"] for e in stats["entries"]] == ["finetuned", "base"]  # sorted by relaxed accuracy
    assert all(e["batch_size"] == 1 for e in stats["entries"])  # statistics from the smallest batch size
    (pair,) = stats["pairs"]
    acc = pair["tests"]["relaxed_accuracy"]
    assert acc["n_resamples"] == 300 and acc["b01"] == 8 and acc["b10"] == 0
    assert acc["delta"] == pytest.approx(8 / 24)
    json.dumps(stats)  # JSON-ready
