"""The declared records describe the files a real smoke run writes, and nothing else.

A smoke bench (qwen2vl twin, base and fine-tuned, 4 samples) runs once for the module; its files are
read back through harness/records/. tests/unit/data/records_v1/ holds the result.json and
training.json a version-1 harness wrote for the same command, to check that they still load.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import fields
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from harness.errors import HarnessError
from harness.fileio import read_json, read_jsonl, write_json_atomic
from harness.records import (
    LatencySummary,
    Manifest,
    RunResult,
    Sample,
    TrainingRecord,
    read_record,
    upgrade,
)
from harness.specs import SCHEMA_VERSION
from harness.store import load_results

V1 = Path(__file__).parent / "data" / "records_v1"


@pytest.fixture(scope="module")
def smoke(harness_cache, tmp_path_factory):
    """results/ and checkpoints/ of a 2-step smoke fine-tune and `harness bench --model qwen2vl --limit 4`."""
    from harness.cli import main

    root = tmp_path_factory.mktemp("records")
    env = {"HARNESS_CACHE_DIR": str(harness_cache), "HARNESS_CONFIG_DIR": str(Path(__file__).parents[2])}
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        # Two optimizer steps are enough for a real training.json; the bench plans the same fine-tune (the
        # --max-steps shorthand of `harness finetune` is --set finetune.max_steps) and reuses it.
        code = main(["finetune", "qwen2vl", "--preset", "smoke", "--max-steps", "2",
                     "--checkpoints", str(root / "checkpoints")])
        assert code == 0
        code = main(["bench", "--model", "qwen2vl", "--preset", "smoke", "--limit", "4",
                     "--set", "finetune.max_steps=2",
                     "--variant", "base", "--variant", "finetuned", "--no-leaderboard",
                     "--results", str(root / "results"), "--checkpoints", str(root / "checkpoints")])
    finally:
        for key, value in old.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    assert code == 0
    return root


def _results(root: Path) -> list[Path]:
    paths = sorted((root / "results").glob("*/result.json"))
    assert len(paths) == 2, paths
    return paths


def _names(cls) -> set[str]:
    return {f.name for f in fields(cls)}


def test_every_record_round_trips_from_a_smoke_run(smoke):
    for path in _results(smoke):
        data = read_json(path)
        record = RunResult.from_dict(data, path)
        assert record.to_dict() == data
        assert set(data) - {"finetune"} == _names(RunResult) - {"finetune"}  # the writer writes every key
        assert isinstance(record.latency, LatencySummary) and set(data["latency"]) == _names(LatencySummary)
        assert isinstance(record.manifest, Manifest) and record.manifest.device == "cpu"
        assert record.schema_version == SCHEMA_VERSION
        rows = read_jsonl(path.parent / "samples.jsonl")
        assert len(rows) == record.num_samples == 4
        for row in rows:
            assert set(row) == _names(Sample)
            assert Sample.from_dict(row).to_dict() == row
    training_path = next((smoke / "checkpoints").rglob("training.json"))
    raw = read_json(training_path)
    training = read_record(training_path, TrainingRecord)
    assert training.to_dict() == upgrade(raw, raw.get("schema_version", 1))
    tuned = read_record(next(p for p in _results(smoke) if "finetuned" in p.parent.name))
    assert tuned.finetune == training  # the result carries the training record it was made with


def test_started_at_is_not_after_finished_at(smoke):
    now = datetime.now(timezone.utc)
    for path in _results(smoke):
        record = read_record(path)
        started, finished = (datetime.fromisoformat(s) for s in (record.started_at, record.finished_at))
        assert started.tzinfo is not None and started.utcoffset() == timedelta(0)
        assert started <= finished <= now
        assert finished - started < timedelta(minutes=10)


def test_unknown_key_is_one_line_naming_the_file_and_the_key(smoke, tmp_path):
    data = read_json(_results(smoke)[0])
    write_json_atomic(tmp_path / "run" / "result.json", {**data, "finshed_at": "2026-01-01"})
    with pytest.raises(HarnessError) as err:
        load_results([tmp_path])
    message = str(err.value)
    assert str(tmp_path / "run" / "result.json") in message and "'finshed_at'" in message
    assert "\n" not in message
    nested = {**data, "latency": {**data["latency"], "p50_ms": 1.0}}
    write_json_atomic(tmp_path / "run" / "result.json", nested)
    with pytest.raises(HarnessError, match=r"result\.json: latency: unknown key 'p50_ms'"):
        read_record(tmp_path / "run" / "result.json")
    # The manifest's undeclared keys are the adapter's own facts: kept, flat, in their place.
    facts = {**data, "manifest": {**data["manifest"], "remote_code_class": "m.M"}}
    record = RunResult.from_dict(facts)
    assert record.manifest.model_facts["remote_code_class"] == "m.M" and record.to_dict() == facts
    with pytest.raises(HarnessError, match=r"manifest: key 'image_id' must be"):
        RunResult.from_dict({**data, "manifest": {**data["manifest"], "image_id": 7}})


def test_a_wrong_type_or_a_missing_key_is_named(smoke):
    data = read_json(_results(smoke)[0])
    with pytest.raises(HarnessError, match=r"r\.json: key 'num_samples' must be int \| None, got str"):
        RunResult.from_dict({**data, "num_samples": "4"}, "r.json")
    with pytest.raises(HarnessError, match=r"samples\.jsonl row: missing key 'prediction'"):
        Sample.from_dict({"id": "x", "references": ["1"]})


def test_store_refuses_to_write_an_undeclared_key(smoke, tmp_path):
    from harness.specs import RunSpec
    from harness.store import RunStore

    data = read_json(_results(smoke)[0])
    spec = RunSpec.from_dict(data["spec"])
    store = RunStore.under(tmp_path, spec)
    with pytest.raises(HarnessError, match="unknown key 'extra'"):
        store.finish({**data, "extra": 1})
    assert not store.result_path.exists()
    with pytest.raises(HarnessError, match=r"samples\.jsonl: unknown key 'socres'"):
        store.append_samples([{**read_jsonl(_results(smoke)[0].parent / "samples.jsonl")[0], "socres": {}}])
    store.finish(data)
    assert read_json(store.result_path) == data


def test_a_version_1_result_and_training_record_upgrade(tmp_path):
    raw = read_json(V1 / "result.json")
    assert raw["schema_version"] == 1 and "started_at" not in raw
    result = read_record(V1 / "result.json")
    assert result.schema_version == SCHEMA_VERSION
    assert result.started_at is None and result.finished_at is None  # not recorded by version 1
    assert result.metrics == raw["metrics"] and result.manifest.dataset_fingerprint
    assert isinstance(result.finetune, TrainingRecord) and result.finetune.adapter_id == raw["finetune"]["adapter_id"]
    training = read_record(V1 / "training.json", TrainingRecord)
    assert training.schema_version == SCHEMA_VERSION and training.loss_per_step == raw["finetune"]["loss_per_step"]
    # The leaderboard's reader takes it too, upgraded.
    (tmp_path / "old").mkdir()
    shutil.copy(V1 / "result.json", tmp_path / "old" / "result.json")
    [loaded] = load_results([tmp_path])
    assert loaded["schema_version"] == SCHEMA_VERSION and loaded["finished_at"] is None
    # Only through upgrade: a version-1 dict is not taken as the current layout.
    with pytest.raises(HarnessError, match="read it through harness.records.upgrade"):
        RunResult.from_dict(raw)


def test_a_newer_version_is_refused(tmp_path):
    data = {**read_json(V1 / "result.json"), "schema_version": SCHEMA_VERSION + 1}
    write_json_atomic(tmp_path / "run" / "result.json", data)
    with pytest.raises(HarnessError, match=f"schema_version {SCHEMA_VERSION + 1} is newer than this harness"):
        read_record(tmp_path / "run" / "result.json")
    with pytest.raises(HarnessError, match="is newer than this harness"):
        load_results([tmp_path])
    with pytest.raises(HarnessError, match="must be a positive integer"):
        upgrade({}, "1")


def test_the_image_facts_reach_the_manifest(monkeypatch):
    from harness.manifest import environment_manifest

    for key in ("HARNESS_IMAGE", "HARNESS_IMAGE_ID", "HARNESS_IMAGE_DIGEST", "HARNESS_BASE_IMAGE", "HARNESS_GIT_SHA"):
        monkeypatch.delenv(key, raising=False)
    assert environment_manifest("cpu")["image"] is None
    monkeypatch.setenv("HARNESS_IMAGE", "harness-qwen2vl:0.1.0")
    monkeypatch.setenv("HARNESS_IMAGE_ID", "sha256:" + "a" * 64)
    monkeypatch.setenv("HARNESS_GIT_SHA", "0123abcd")
    monkeypatch.setenv("HARNESS_BASE_IMAGE", "debian:bookworm-slim")
    manifest = environment_manifest("cpu")
    assert manifest["image"] == "harness-qwen2vl:0.1.0" and manifest["image_id"] == "sha256:" + "a" * 64
    assert manifest["harness_git_sha"] == "0123abcd" and manifest["base_image"] == "debian:bookworm-slim"
    assert manifest["image_digest"] is None
    Manifest.from_dict(json.loads(json.dumps(manifest)))  # every key it writes is declared
