"""Result files on disk: spec.json first, samples.jsonl appended per batch, result.json last.

Writes are atomic (temp file + rename) or append-and-fsync (harness/fileio.py), so an interrupted
run resumes without losing or duplicating samples. What the files hold is declared in
harness/records/; rows and results are checked against it on the way in and out.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from harness import faults
from harness.errors import HarnessError
from harness.fileio import append_jsonl, read_json, read_jsonl, write_json_atomic
from harness.records import RunResult, Sample, upgrade
from harness.specs import FinetuneSpec, RunSpec

# read_json / write_json_atomic stay importable from here: many modules use them through the store.
__all__ = ["RunStore", "load_results", "output_file", "output_mismatch", "read_json", "write_json_atomic"]


def output_file(folder: str | Path, spec: RunSpec | FinetuneSpec) -> Path:
    """The record a finished job leaves: result.json (a run) or training.json (a fine-tune), written last."""
    return Path(folder) / ("training.json" if isinstance(spec, FinetuneSpec) else "result.json")


def output_mismatch(folder: str | Path, spec: RunSpec | FinetuneSpec) -> str | None:
    """None when `folder` holds the finished record of exactly `spec`; else why not.

    The one "is it done" rule, for the orchestrator (skip or redo), every runner (did the worker run
    the planned spec?) and the workers themselves (resume or return).
    """
    path = output_file(folder, spec)
    if not path.exists():
        return f"{path.name} missing"
    record = read_json(path)
    if isinstance(spec, FinetuneSpec):
        got, want = record.get("adapter_id"), spec.adapter_id
    else:
        got, want = (record.get("spec") or {}).get("config_hash"), spec.config_hash
    return None if got == want else f"{path} is for {got}, not the planned {want}"


class RunStore:
    """The folder of one run (by default <results>/<run_id>/, see `under`)."""

    def __init__(self, folder: str | Path, spec: RunSpec):
        self.spec = spec
        self.dir = Path(folder)
        self.spec_path = self.dir / "spec.json"
        self.samples_path = self.dir / "samples.jsonl"
        self.result_path = self.dir / "result.json"

    @classmethod
    def under(cls, results_dir: str | Path, spec: RunSpec) -> RunStore:
        return cls(Path(results_dir) / spec.run_id, spec)

    def is_finished(self) -> bool:
        return output_mismatch(self.dir, self.spec) is None

    def begin(self) -> None:
        """Write spec.json before any work; an existing one must describe the same run."""
        record = self.spec.record()
        if self.spec_path.exists():
            old = read_json(self.spec_path)
            if old.get("config_hash") != self.spec.config_hash:
                raise HarnessError(f"{self.spec_path}: belongs to another configuration; remove the folder")
        else:
            write_json_atomic(self.spec_path, record)
        faults.point("bench.after_spec")

    def done_samples(self) -> list[dict]:
        """Samples already stored. A torn last line (killed mid-write) is cut off; duplicates dropped."""
        return read_jsonl(self.samples_path, repair=True, key="id")

    def append_samples(self, rows: Iterable[dict | Sample]) -> None:
        where = str(self.samples_path)
        append_jsonl(self.samples_path,
                     [(row if isinstance(row, Sample) else Sample.from_dict(row, where)).to_dict() for row in rows],
                     fault="bench.append")
        faults.point("bench.after_append")

    def finish(self, result: dict | RunResult) -> None:
        record = result if isinstance(result, RunResult) else RunResult.from_dict(result, self.result_path)
        faults.point("bench.before_result")
        write_json_atomic(self.result_path, record.to_dict(), fault="bench.result")
        faults.point("bench.after_result")


def load_results(results_dirs: Iterable[str | Path]) -> list[dict]:
    """Every finished run under the given folders, upgraded to the current layout.

    Each is checked against `RunResult` (a malformed result.json is one line naming the file) and
    returned as the dict it was stored as, with `_dir` added.
    """
    out = []
    for root in results_dirs:
        root = Path(root)
        if not root.is_dir():
            raise HarnessError(f"{root}: results folder not found")
        for path in sorted(root.glob("*/result.json")):
            result = read_json(path)
            if not isinstance(result, dict):
                raise HarnessError(f"{path}: expected a JSON object, got {type(result).__name__}")
            if "schema_version" not in result:
                raise HarnessError(f"{path}: missing field 'schema_version'")
            result = upgrade(result, result["schema_version"], path)
            RunResult.from_dict(result, path)
            result["_dir"] = str(path.parent)
            out.append(result)
    return out
