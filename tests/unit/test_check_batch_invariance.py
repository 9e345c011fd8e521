"""`harness check batch-invariance` on constructed stored runs (no model loads): the report and the exit code."""

from __future__ import annotations

import pytest

from harness.checks.batch_invariance import compare_stored
from harness.cli import main
from harness.errors import HarnessError
from harness.plan import resolve_paths
from harness.registry import load_preset
from harness.specs import SCHEMA_VERSION
from harness.store import RunStore
from tests.helpers import plan_runs

LIMIT = 4
METRICS = {1: {"relaxed_accuracy": 0.75, "rougeL": 0.8}, 8: {"relaxed_accuracy": 0.5, "rougeL": 0.7}}


def _row(sample_id: str, prediction: str, tokens: int = 2) -> dict:
    return {"id": sample_id, "references": ["1"], "prediction": prediction, "raw_output": prediction,
            "batch_index": 0, "latency_ms": 1.0, "generated_tokens": tokens}


def _store(spec, rows) -> RunStore:
    store = RunStore(resolve_paths(load_preset("smoke")).run_dir(spec.run_id), spec)
    store.begin()
    store.append_samples(rows)
    store.finish({"schema_version": SCHEMA_VERSION, "run_id": spec.run_id, "spec": spec.record(),
                  "metrics": METRICS[spec.batch_size], "num_samples": len(rows)})
    return store


@pytest.fixture
def stored_pair(harness_env):
    """qwen2vl base at batch 1 and 8, as the check plans them: test-2 answers differently at batch 8, test-3
    has the same text but one more generated token."""
    one, eight = plan_runs(["qwen2vl"], preset="smoke", batch_sizes=[1, 8], limit=LIMIT)
    a = _store(one, [_row("test-0", "12"), _row("test-1", "blue"), _row("test-2", "7"), _row("test-3", "yes")])
    b = _store(eight, [_row("test-0", "12"), _row("test-1", "blue"), _row("test-2", "9"),
                       _row("test-3", "yes", tokens=3)])
    return a, b


def test_report_counts_the_differing_prediction(stored_pair):
    a, b = stored_pair
    report = compare_stored(a.dir, b.dir)
    assert (report.model, report.variant, report.batch_sizes) == ("qwen2vl", "base", (1, 8))
    assert (report.identical, report.samples, report.share) == (3, 4, 0.75)
    assert report.same_generation == 2  # test-3: same text, another token count
    assert [(d.id, d.reference, d.batched) for d in report.disagreements] == [("test-2", "7", "9")]
    assert report.metrics["relaxed_accuracy"] == (0.75, 0.5)
    text = "\n".join(report.lines())
    assert "identical predictions: 3/4 samples (share 0.7500)" in text
    assert "relaxed_accuracy: 0.7500 at batch size 1, 0.5000 at batch size 8 (difference -0.2500)" in text
    assert "test-2: batch size 1 '7' | batch size 8 '9'" in text


def test_missing_sample_is_a_disagreement(stored_pair):
    a, b = stored_pair
    b.samples_path.write_text("".join(line + "\n" for line in b.samples_path.read_text().splitlines()[:3]))
    report = compare_stored(a.dir, b.dir)
    assert (report.identical, report.samples) == (2, 4)
    assert [(d.id, d.batched) for d in report.disagreements] == [("test-2", "9"), ("test-3", None)]


def test_runs_that_differ_in_more_than_batch_size_are_refused(harness_env):
    one = plan_runs(["qwen2vl"], preset="smoke", batch_sizes=[1], limit=LIMIT)[0]
    other = plan_runs(["qwen2vl"], preset="smoke", batch_sizes=[8], limit=LIMIT, seed=1)[0]
    a, b = _store(one, [_row("test-0", "1")]), _store(other, [_row("test-0", "1")])
    with pytest.raises(HarnessError, match="differ in 'seed', not only in batch size"):
        compare_stored(a.dir, b.dir)


def test_cli_fails_below_tolerance_and_passes_within(stored_pair, capsys):
    argv = ["check", "batch-invariance", "qwen2vl", "--variant", "base", "--preset", "smoke", "--limit", str(LIMIT)]
    assert main(argv) == 1  # both runs are stored and finished: reused, no model loads
    out = capsys.readouterr().out.splitlines()
    failed = [line for line in out if "FAILED" in line]
    assert failed == ["batch invariance FAILED for qwen2vl/base: 3/4 identical predictions (share 0.7500) at "
                      "batch size 8 vs 1, below the required share 1.0000 (--tolerance 0)"]
    assert main([*argv, "--tolerance", "0.25"]) == 0
    assert capsys.readouterr().out.splitlines()[-1].startswith("batch invariance OK: 1 model variant(s)")


def test_cli_refuses_batch_size_one(harness_env, capsys):
    assert main(["check", "batch-invariance", "qwen2vl", "--preset", "smoke", "--batch-size", "1"]) == 2
    assert "--batch-size 1: compare batch size 1 with a larger one" in capsys.readouterr().err
