"""One rule for which runs are comparable, and one peak-memory picker, shared by explain, leaderboard, sweep."""

from __future__ import annotations

import subprocess
import sys

import pytest
from test_explain import make_run
from test_leaderboard_fixtures import make_samples, write_run

from harness.analysis import comparable, explain_pair, find_pairs, pair_key
from harness.engine.sweep import sweep_rows
from harness.leaderboard.analyze import analyze
from harness.leaderboard.load import collect
from harness.leaderboard.stats import StatsOptions
from harness.trackers.memory import peak_memory


def _result(**changes) -> dict:
    spec = {"model": "m", "variant": "base", "batch_size": 1, "benchmark": "chartqa", "dataset": "d",
            "dataset_revision": "r1", "split": "test", "limit": None, "preset": None}
    manifest = {"hardware": "NVIDIA L4", "dataset_fingerprint": "f1"}
    for key, value in changes.items():
        (manifest if key in manifest else spec)[key] = value
    return {"run_id": "-".join(f"{k}={v}" for k, v in changes.items()) or "ref", "spec": spec, "manifest": manifest}


@pytest.mark.parametrize("field, value", [("benchmark", "other"), ("dataset", "d2"), ("dataset_revision", "r2"),
                                          ("split", "val"), ("dataset_fingerprint", "f2"), ("limit", 10),
                                          ("hardware", "CPU (2 cores)")])
def test_other_samples_or_hardware_are_not_comparable(field, value):
    assert not comparable(_result(), _result(**{field: value}))
    assert pair_key(_result()) != pair_key(_result(**{field: value}))


@pytest.mark.parametrize("field, value", [("model", "m2"), ("variant", "finetuned"), ("batch_size", 8),
                                          ("preset", "smoke")])
def test_what_a_comparison_looks_at_keeps_runs_comparable(field, value):
    assert comparable(_result(), _result(**{field: value}))


def test_find_pairs_uses_the_rule():
    base = _result()
    tuned = _result(variant="finetuned")
    other_hw = _result(variant="finetuned", hardware="CPU (2 cores)")
    other_rev = _result(variant="finetuned", dataset_revision="r2")
    limited = _result(variant="finetuned", limit=10)
    pairs = find_pairs([base, tuned, other_hw, other_rev, limited])
    assert [(a["run_id"], b["run_id"]) for a, b in pairs] == [("ref", "variant=finetuned")]


def test_leaderboard_pairs_only_comparable_runs(tmp_path):
    samples = make_samples()
    write_run(tmp_path, "alpha", "base", samples)
    write_run(tmp_path, "alpha", "finetuned", samples)
    write_run(tmp_path, "beta", "base", samples, hardware="NVIDIA L4")
    write_run(tmp_path, "beta", "finetuned", samples, hardware="CPU (2 cores)")
    a = analyze(collect([tmp_path]), StatsOptions(n_resamples=20))
    assert [(p.base.model, p.other.model) for p in a.pairs] == [("alpha", "alpha")]
    assert all(comparable(p.base.primary.result, p.other.primary.result) for p in a.pairs)


def test_one_peak_memory_picker_for_explain_sweep_and_leaderboard():
    # Only the allocator's reserved figure and RSS: every report must name the same measure.
    memory = {"torch_max_reserved_mb": 6000.0, "rss_peak_mb": 900.0}
    assert peak_memory(memory) == ("rss_peak_mb", 900.0)
    a, b = make_run("a"), make_run("b", per_step=6.0)
    a[0]["memory"] = b[0]["memory"] = memory
    rows = [r.quantity for r in explain_pair(a[0], b[0], a[1], b[1]).rows if r.quantity.startswith("peak memory")]
    assert rows == ["peak memory, MB (rss_peak_mb)"]
    swept = sweep_rows([{"spec": {"model": "m", "variant": "base", "batch_size": 1}, "memory": memory}])
    assert (swept[0]["memory_key"], swept[0]["peak_memory_mb"]) == ("rss_peak_mb", 900.0)


def test_the_analysis_and_the_picker_import_no_ml_packages():
    code = ("import sys; import harness.analysis, harness.engine.sweep; "
            "from harness.trackers.memory import peak_memory; "
            "bad = [m for m in ('torch', 'transformers', 'peft') if m in sys.modules]; assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_explain_refuses_a_newer_schema_in_one_line(tmp_path):
    import json

    from harness.analysis import load_run
    from harness.errors import HarnessError
    from harness.specs import SCHEMA_VERSION

    result, rows = make_run("r")
    result["schema_version"] = SCHEMA_VERSION + 1
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "result.json").write_text(json.dumps(result))
    with pytest.raises(HarnessError, match="newer than this harness understands"):
        load_run(tmp_path / "r")
