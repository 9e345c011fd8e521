"""Older layouts, read in one place: `upgrade` walks a record up one version at a time."""

from __future__ import annotations

from pathlib import Path

from harness.errors import HarnessError
from harness.fileio import read_json
from harness.records.files import RunResult, TrainingRecord
from harness.specs import SCHEMA_VERSION

__all__ = ["read_record", "upgrade"]


def _v1_to_v2(record: dict) -> dict:
    """2 added started_at/finished_at (not recorded before: None) and training.json's version."""
    out = {**record, "schema_version": 2}
    out.setdefault("started_at", None)
    out.setdefault("finished_at", None)
    if isinstance(out.get("finetune"), dict):
        out["finetune"] = _v1_to_v2(out["finetune"])
    return out


def _v2_to_v3(record: dict) -> dict:
    """3 added the training record's resumed_at_step (None: not recorded)."""
    out = {**record, "schema_version": 3}
    if "loss_per_step" in out:  # a training record
        out.setdefault("resumed_at_step", None)
    if isinstance(out.get("finetune"), dict):
        out["finetune"] = _v2_to_v3(out["finetune"])
    return out


def _v3_to_v4(record: dict) -> dict:
    """4 added optional keys only, each with its default for older files: skipped_samples, oom_retries,
    subset_metrics, shards, the manifest's dataset_rows_asked / cluster / engine_memory, the engine's
    per-request latencies (vLLM) and latency.not_comparable. Nothing to convert."""
    out = {**record, "schema_version": 4}
    if isinstance(out.get("finetune"), dict):
        out["finetune"] = _v3_to_v4(out["finetune"])
    return out


_UPGRADES = {1: _v1_to_v2, 2: _v2_to_v3, 3: _v3_to_v4}  # from version -> step to the next; one entry per bump


def upgrade(record: dict, from_version, source: str | Path | None = None) -> dict:
    """`record` (result.json or training.json of `from_version`) in the current layout."""
    where = str(source or "record")
    if not isinstance(from_version, int) or isinstance(from_version, bool) or from_version < 1:
        raise HarnessError(f"{where}: schema_version must be a positive integer, got {from_version!r}")
    if from_version > SCHEMA_VERSION:
        raise HarnessError(f"{where}: schema_version {from_version} is newer than this harness understands "
                           f"({SCHEMA_VERSION}); upgrade the harness")
    for version in range(from_version, SCHEMA_VERSION):
        record = _UPGRADES[version](record)
    return record


def read_record(path: str | Path, cls: type[RunResult] | type[TrainingRecord] = RunResult):
    """A stored result.json / training.json, upgraded to the current layout and checked."""
    data = read_json(path)
    if not isinstance(data, dict):
        raise HarnessError(f"{path}: expected a JSON object, got {type(data).__name__}")
    # training.json had no version before 2; result.json always had one.
    version = data.get("schema_version", 1 if cls is TrainingRecord else None)
    if version is None:
        raise HarnessError(f"{path}: missing field 'schema_version'")
    return cls.from_dict(upgrade(data, version, path), path)
