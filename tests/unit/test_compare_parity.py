"""`harness compare RUN_A RUN_B` on constructed stored runs (no model loads): parity, paired tests, refusals."""

from __future__ import annotations

import json

import pytest

from harness.analysis import load_run
from harness.analysis.parity import parity
from harness.cli import main
from harness.errors import HarnessError
from harness.plan import resolve_paths
from harness.registry import load_preset
from harness.specs import SCHEMA_VERSION
from harness.stats import binomial_two_sided_p
from harness.store import RunStore
from tests.helpers import plan_runs

LIMIT = 6


def _row(sample_id: str, prediction: str, right: bool, rouge: float, tokens: int = 2) -> dict:
    return {"id": sample_id, "image_id": f"img{int(sample_id[-1]) // 2}", "query": f"q{sample_id}",
            "references": ["1"], "prediction": prediction, "raw_output": prediction, "batch_index": 0,
            "latency_ms": 1.0, "generated_tokens": tokens, "prompt_tokens": 40,
            "scores": {"relaxed_accuracy": float(right), "rougeL": rouge}}


def _store(spec, rows, metrics: dict) -> RunStore:
    store = RunStore(resolve_paths(load_preset("smoke")).run_dir(spec.run_id), spec)
    store.begin()
    store.append_samples(rows)
    store.finish({"schema_version": SCHEMA_VERSION, "run_id": spec.run_id, "spec": spec.record(),
                  "metrics": metrics, "num_samples": len(rows)})
    return store


A_ROWS = [("test-0", "1", True, 1.0), ("test-1", "1", True, 1.0), ("test-2", "1", True, 1.0),
          ("test-3", "2", False, 0.0), ("test-4", "2", False, 0.0), ("test-5", "1", True, 1.0)]
# B: test-1 and test-2 turn wrong (b10 = 2), test-3 turns right (b01 = 1); test-5 same text, one more token.
B_ROWS = [("test-0", "1", True, 1.0), ("test-1", "3 apples", False, 0.25), ("test-2", "7", False, 0.0),
          ("test-3", "1", True, 1.0), ("test-4", "2", False, 0.0), ("test-5", "1", True, 1.0)]


@pytest.fixture
def backends_pair(harness_env):
    """qwen2vl base planned for both backends (the transformers and the vLLM run of the same questions)."""
    (tf,) = plan_runs(["qwen2vl"], preset="smoke", limit=LIMIT)
    (vl,) = plan_runs(["qwen2vl"], preset="smoke", limit=LIMIT, backend="vllm")
    a = _store(tf, [_row(*r) for r in A_ROWS], {"relaxed_accuracy": 4 / 6, "rougeL": 4 / 6})
    b = _store(vl, [_row(*r, tokens=3 if r[0] == "test-5" else 2) for r in B_ROWS],
               {"relaxed_accuracy": 3 / 6, "rougeL": 3.25 / 6})
    return a, b


def _report(a, b):
    return parity(*load_run(a.dir), *load_run(b.dir))


def test_share_tests_and_disagreements_of_two_backends(backends_pair):
    a, b = backends_pair
    report = _report(a, b)
    assert (report.identical, report.samples, report.same_generation) == (3, 6, 2)
    assert [d.id for d in report.disagreements] == ["test-1", "test-2", "test-3"]
    assert report.disagreements[0].a == "1" and report.disagreements[0].b == "3 apples"
    assert ("backend", "transformers", "vllm") in report.settings
    assert "model_facts.image" in {k for k, _, _ in report.settings}  # the backend's own image, by its key
    metrics = {m.name: m for m in report.metrics}
    acc = metrics["relaxed_accuracy"]
    assert acc.test["method"].startswith("exact McNemar")
    assert (acc.test["b01"], acc.test["b10"]) == (1, 2)
    assert acc.test["p_value"] == pytest.approx(binomial_two_sided_p(1, 3))
    assert acc.delta == pytest.approx(3 / 6 - 4 / 6)
    rouge = metrics["rougeL"]
    assert "bootstrap" in rouge.test["method"] and "McNemar" not in rouge.test["method"]
    assert rouge.delta == pytest.approx((3.25 - 4) / 6)
    assert rouge.test["low"] <= rouge.delta <= rouge.test["high"]
    assert any("backends differ" in n for n in report.notes)


def test_compare_cli_prints_the_report_and_fails_below_min_share(backends_pair, capsys):
    a, b = backends_pair
    assert main(["compare", str(a.dir), str(b.dir)]) == 0
    out = capsys.readouterr().out
    assert "identical predictions: 3/6 samples (share 0.5000)" in out
    assert "| relaxed_accuracy | 0.6667 | 0.5000 | -0.1667 | McNemar (A wrong, B right: 1; A right, B wrong: 2)" in out
    assert "test-1: 'qtest-1' (references ['1']): A '1' | B '3 apples'" in out
    assert "differs in: backend 'transformers' vs 'vllm'" in out
    assert main(["compare", str(a.dir), str(b.dir), "--min-share", "0.5"]) == 0
    capsys.readouterr()
    assert main(["compare", str(a.dir), str(b.dir), "--min-share", "0.9"]) == 1
    assert "parity FAILED: 3/6 identical predictions" in capsys.readouterr().err
    assert main(["compare", str(a.dir), str(b.dir), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["identical"] == 3 and data["metrics"]["relaxed_accuracy"]["test"]["b10"] == 2


def test_runs_of_other_questions_are_refused_naming_the_field(harness_env):
    (six,) = plan_runs(["qwen2vl"], preset="smoke", limit=LIMIT)
    (four,) = plan_runs(["qwen2vl"], preset="smoke", limit=4, backend="vllm")
    a = _store(six, [_row(*r) for r in A_ROWS], {})
    b = _store(four, [_row(*r) for r in A_ROWS[:4]], {})
    with pytest.raises(HarnessError, match=r"did not answer the same questions: they differ in limit \(6 vs 4\)"):
        _report(a, b)


def test_same_backend_runs_compare_without_a_backend_note(harness_env):
    one, eight = plan_runs(["qwen2vl"], preset="smoke", limit=LIMIT, batch_sizes=[1, 8])
    a = _store(one, [_row(*r) for r in A_ROWS], {"relaxed_accuracy": 4 / 6})
    b = _store(eight, [_row(*r) for r in A_ROWS], {"relaxed_accuracy": 4 / 6})
    report = _report(a, b)
    assert report.share == 1.0 and not report.disagreements
    assert [k for k, _, _ in report.settings] == ["batch_size"]  # no backend: both ran transformers
    assert not any("backends differ" in n for n in report.notes)
    assert {m.name: m.test["p_value"] for m in report.metrics}["relaxed_accuracy"] == 1.0
