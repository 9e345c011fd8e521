"""The inference backend as part of the spec (plan, hash, pins), its runner, its metrics, and `explain` naming it.

No vLLM here: everything is planned or constructed (tests/integration/test_vllm_backend.py runs the engine).
"""

from __future__ import annotations

import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from harness.analysis.attribute import settings
from harness.analysis.compare import comparable
from harness.backends.metrics import NOT_COMPARABLE, engine_latency
from harness.backends.vllm import engine_request_metrics
from harness.engine.bench import summarize_latency
from harness.errors import HarnessError
from harness.plan import BenchRequest, plan
from harness.runners.base import SKIPPED, Job
from harness.runners.venv import VenvRunner
from harness.specs import spec_from_record
from tests.helpers import plan_runs


def test_default_backend_is_not_recorded_and_vllm_is_another_run(harness_env):
    (tf,) = plan_runs(["qwen2vl"], preset="smoke")
    (vl,) = plan_runs(["qwen2vl"], preset="smoke", backend="vllm")
    assert "backend" not in tf.record() and "engine" not in tf.record()  # ids planned before backends stand
    assert vl.record()["backend"] == "vllm" and vl.record()["engine"]["lora"] == "merged"
    assert vl.config_hash != tf.config_hash
    assert vl.run_id.startswith("qwen2vl-base-vllm-bs8-") and "-vllm-" not in tf.run_id
    assert spec_from_record(vl.record()).config_hash == vl.config_hash  # the worker reads it back


def test_vllm_spec_carries_the_backends_pins_image_and_twin_engine(harness_env):
    card = yaml.safe_load(Path("models/smolvlm.yaml").read_text())["backends"]["vllm"]
    (vl,) = plan_runs(["smolvlm"], preset="smoke", backend="vllm")
    assert vl.model_facts.environment == card["environment"]
    assert vl.model_facts.image == "harness-vllm"
    assert vl.engine["enforce_eager"] is card["twin_engine"]["enforce_eager"]  # the twin's engine settings
    (real,) = plan_runs(["smolvlm"], backend="vllm", device="cpu")
    assert real.engine["max_model_len"] == card["engine"]["max_model_len"]


def test_unsupported_backend_is_one_line_and_all_skips_those_models(harness_env):
    with pytest.raises(HarnessError, match=r"moondream\.yaml: moondream does not support --backend vllm"):
        plan(BenchRequest(models=("moondream",), preset="smoke", backend="vllm"))
    p = plan(BenchRequest(preset="smoke", backend="vllm"))
    assert {r.model for r in p.runs} == {"qwen2vl", "smolvlm"}
    assert any("moondream does not support --backend vllm" in line for line in p.skipped)
    with pytest.raises(HarnessError, match="--backend tensorrt: unknown backend"):
        plan(BenchRequest(models=("qwen2vl",), preset="smoke", backend="tensorrt"))


def test_unknown_engine_setting_names_the_key_and_card(harness_env, config_copy):
    path = config_copy / "models" / "qwen2vl.yaml"
    data = yaml.safe_load(path.read_text())
    data["backends"]["vllm"]["engine"]["max_num_seq"] = 8
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(HarnessError, match=r"qwen2vl\.yaml: backends\.vllm: unknown engine setting 'max_num_seq'"):
        plan(BenchRequest(models=("qwen2vl",), preset="smoke", backend="vllm"))


def test_explain_names_the_backend_and_old_results_count_as_transformers():
    differing = {s.factor for s in settings({"backend": "transformers"}, {"backend": "vllm"}) if s.differs}
    assert differing == {"backend"}
    assert not [s for s in settings({}, {"backend": "transformers"}) if s.differs]  # recorded before backends


def test_runs_of_two_backends_are_not_latency_comparable():
    base = {"spec": {"benchmark": "b", "dataset": "d", "split": "test"}, "manifest": {"hardware": "CPU (2 cores)"}}
    vllm = {**base, "spec": {**base["spec"], "backend": "vllm"}}
    old = {**base, "spec": {**base["spec"]}}
    assert comparable(base, old) and not comparable(base, vllm)


def test_engine_request_metrics_and_their_summary():
    stats = SimpleNamespace(num_generation_tokens=5, first_token_ts=10.0, last_token_ts=10.2,
                            first_token_latency=0.05, queued_ts=9.9, scheduled_ts=9.95)
    m = engine_request_metrics(SimpleNamespace(metrics=stats))
    assert m == pytest.approx({"engine_ttft_ms": 50.0, "engine_tpot_ms": 50.0, "engine_queue_ms": 50.0})
    assert engine_request_metrics(SimpleNamespace(metrics=None)) == dict.fromkeys(m)
    rows = [{"id": f"s{i}", "batch_index": 0, "batch_size": 2, "latency_ms": 10.0, "generated_tokens": 5,
             "image_tokens": 4, "prompt_tokens": 9, "preprocess_ms": 1.0, "generate_ms": 8.0, "postprocess_ms": 1.0,
             "prefill_ms": None, **m} for i in range(2)]
    latency = summarize_latency(rows)
    assert latency["engine_ttft_ms"]["mean"] == pytest.approx(50.0)
    assert set(latency["not_comparable"]) == set(NOT_COMPARABLE) and "ttft_ms" in latency["not_comparable"]
    plain = [{k: v for k, v in r.items() if not k.startswith("engine_")} for r in rows]
    assert engine_latency(plain) == {} and "not_comparable" not in summarize_latency(plain)


def test_venv_runner_skips_without_the_backend_python(harness_env, monkeypatch, tmp_path):
    (vl,) = plan_runs(["qwen2vl"], preset="smoke", backend="vllm")
    job = Job(vl, tmp_path / vl.run_id, tmp_path / "ck", tmp_path / "cache")
    monkeypatch.setenv("HARNESS_VLLM_PYTHON", str(tmp_path / "nowhere" / "python"))
    outcome = VenvRunner().run_one(job)
    assert outcome.status == SKIPPED and "scripts/vllm-env.sh" in outcome.reason
    monkeypatch.setenv("HARNESS_VLLM_PYTHON", sys.executable)  # this Python: transformers 5.24, no vllm
    outcome = VenvRunner().run_one(job)
    assert outcome.status == SKIPPED and "does not match the vllm backend's pins" in outcome.reason
    assert "transformers" in outcome.reason


def test_local_runner_points_a_vllm_spec_at_its_environment(harness_env, tmp_path):
    from harness.orchestrate import prepare_job
    from harness.plan import resolve_paths
    from harness.runners.base import SKIPPED
    from harness.runners.local import LocalRunner

    (vl,) = plan_runs(["qwen2vl"], preset="smoke", backend="vllm")  # pins transformers < 5.20; this host: 5.24
    job = prepare_job(vl, resolve_paths(None, tmp_path / "results", tmp_path / "checkpoints"))
    outcome = LocalRunner().run_one(job)
    assert outcome.status == SKIPPED and "--runner venv" in outcome.reason and "scripts/vllm-env.sh" in outcome.reason
