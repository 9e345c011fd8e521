"""Planning is deterministic and location-free; the store resumes without loss or duplicates."""

from __future__ import annotations

import json

import pytest

from harness.errors import HarnessError
from harness.plan import BenchRequest, plan
from harness.specs import SCHEMA_VERSION
from harness.store import RunStore, load_results, write_json_atomic
from tests.helpers import finetune_sets, plan_ft, plan_runs


def test_specs_share_decoding_across_variants(harness_env):
    specs = plan_runs(["qwen2vl"], ["base", "finetuned"], preset="smoke")
    assert [s.variant for s in specs] == ["base", "finetuned"]
    assert specs[0].decoding == specs[1].decoding
    assert specs[0].decoding["num_beams"] == 1 and specs[0].decoding["do_sample"] is False
    assert specs[0].model_id.startswith("twin:") and specs[0].dataset.startswith("synthetic:")


def test_config_hash_ignores_locations(harness_env, monkeypatch, tmp_path):
    a = plan_runs(["qwen2vl"], preset="smoke")[0]
    monkeypatch.setenv("HARNESS_CACHE_DIR", str(tmp_path / "elsewhere"))
    monkeypatch.setenv("HARNESS_RESULTS_DIR", str(tmp_path / "other-results"))
    b = plan_runs(["qwen2vl"], preset="smoke")[0]
    assert a.run_id == b.run_id
    c = plan_runs(["qwen2vl"], preset="smoke", limit=5)[0]
    assert c.run_id != a.run_id


def test_batch_size_sweep_expands(harness_env):
    specs = plan_runs(["qwen2vl"], preset="smoke", batch_sizes=[1, 4, 8])
    assert [s.batch_size for s in specs] == [1, 4, 8]
    assert len({s.run_id for s in specs}) == 3


def test_a_finetuned_run_names_the_planned_fine_tune(harness_env):
    p = plan(BenchRequest(models=("qwen2vl",), variants=("finetuned",), preset="smoke"))
    (run,) = p.runs
    assert run.needs == run.adapter_id and p.finetune(run.needs) is not None
    assert p.finetune(run.needs).model_facts == run.model_facts


def test_finetune_recipe_merge_order(harness_env):
    spec = plan_ft("qwen2vl", preset="smoke", sets=finetune_sets(epochs=7))
    assert spec.recipe.method == "lora"  # preset overrides the card's qlora
    assert spec.recipe.lora.target_modules == "all-linear"  # twin override
    assert spec.recipe.epochs == 7  # command line wins
    real = plan_ft("qwen2vl")
    assert real.recipe.method == "qlora" and real.recipe.lora.target_modules == ("q_proj", "v_proj")
    assert real.dataset == "krowiemlekommm/PJN_CHARTS"


def test_store_resumes_after_torn_write(harness_env, tmp_path):
    spec = plan_runs(["qwen2vl"], preset="smoke")[0]
    store = RunStore.under(tmp_path / "r", spec)
    store.begin()
    store.append_samples([_row("test-0"), _row("test-1")])
    with open(store.samples_path, "a") as fh:
        fh.write('{"id": "test-2", "v"')  # killed mid-line
    rows = store.done_samples()
    assert [r["id"] for r in rows] == ["test-0", "test-1"]
    assert store.samples_path.read_text().endswith("}\n")  # torn tail cut off
    store.append_samples([_row("test-1", "other"), _row("test-2")])  # duplicate id ignored
    assert [r["id"] for r in store.done_samples()] == ["test-0", "test-1", "test-2"]
    assert store.done_samples()[1]["prediction"] == "x"
    assert not store.is_finished()
    store.finish({"schema_version": SCHEMA_VERSION, "run_id": spec.run_id,
                  "spec": {"config_hash": spec.config_hash}})
    assert store.is_finished()


def _row(sample_id: str, prediction: str = "x") -> dict:
    return {"id": sample_id, "references": ["1"], "prediction": prediction, "batch_index": 0,
            "latency_ms": 1.0, "generated_tokens": 1}


def test_store_refuses_foreign_spec(harness_env, tmp_path):
    a, b = plan_runs(["qwen2vl"], preset="smoke", batch_sizes=[1, 2])
    store = RunStore.under(tmp_path / "r", a)
    store.begin()
    json.loads(store.spec_path.read_text())
    store_b = RunStore.under(tmp_path / "r", b)
    store_b.dir = store.dir
    store_b.spec_path = store.spec_path
    with pytest.raises(HarnessError, match="another configuration"):
        store_b.begin()


def test_results_newer_schema_refused(tmp_path):
    write_json_atomic(tmp_path / "run" / "result.json", {"schema_version": 99})
    with pytest.raises(HarnessError, match="schema_version 99 is newer"):
        load_results([tmp_path])
