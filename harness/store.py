"""Result files on disk: spec.json first, samples.jsonl appended per batch, result.json last.

Writes are atomic (temp file + rename) or append-and-fsync, so an interrupted run resumes
without losing or duplicating samples.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

from harness.errors import HarnessError
from harness.specs import SCHEMA_VERSION, RunSpec

__all__ = ["RunStore", "load_results", "read_json", "write_json_atomic"]


def write_json_atomic(path: Path, obj) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    with os.fdopen(fd, "w") as fh:
        json.dump(obj, fh, indent=2, sort_keys=True, default=str)
        fh.write("\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.chmod(tmp, 0o644)  # mkstemp makes 0600; results on a shared mount must stay readable
    os.replace(tmp, path)


def read_json(path: Path) -> dict:
    try:
        return json.loads(Path(path).read_text())
    except json.JSONDecodeError as exc:
        raise HarnessError(f"{path}: invalid JSON at line {exc.lineno} ({exc.msg})") from None


class RunStore:
    """The folder of one run: <results>/<run_id>/."""

    def __init__(self, results_dir: str | Path, spec: RunSpec):
        self.spec = spec
        self.dir = Path(results_dir) / spec.run_id
        self.spec_path = self.dir / "spec.json"
        self.samples_path = self.dir / "samples.jsonl"
        self.result_path = self.dir / "result.json"

    def is_finished(self) -> bool:
        if not self.result_path.exists():
            return False
        return read_json(self.result_path).get("spec", {}).get("config_hash") == self.spec.config_hash

    def begin(self) -> None:
        """Write spec.json before any work; an existing one must describe the same run."""
        record = {**self.spec.to_dict(), "config_hash": self.spec.config_hash, "run_id": self.spec.run_id}
        if self.spec_path.exists():
            old = read_json(self.spec_path)
            if old.get("config_hash") != self.spec.config_hash:
                raise HarnessError(f"{self.spec_path}: belongs to another configuration; remove the folder")
            return
        write_json_atomic(self.spec_path, record)

    def done_samples(self) -> list[dict]:
        """Samples already stored. A torn last line (killed mid-write) is cut off; duplicates dropped."""
        if not self.samples_path.exists():
            return []
        rows, seen, good_bytes = [], set(), 0
        with open(self.samples_path, "rb") as fh:
            for raw in fh:
                if not raw.endswith(b"\n"):
                    break
                try:
                    row = json.loads(raw)
                except json.JSONDecodeError:
                    break
                good_bytes += len(raw)
                if row["id"] not in seen:
                    seen.add(row["id"])
                    rows.append(row)
        if good_bytes != self.samples_path.stat().st_size:
            with open(self.samples_path, "r+b") as fh:
                fh.truncate(good_bytes)
        return rows

    def append_samples(self, rows: Iterable[dict]) -> None:
        with open(self.samples_path, "a") as fh:
            for row in rows:
                fh.write(json.dumps(row, sort_keys=True, default=str) + "\n")
            fh.flush()
            os.fsync(fh.fileno())

    def finish(self, result: dict) -> None:
        write_json_atomic(self.result_path, result)


def load_results(results_dirs: Iterable[str | Path]) -> list[dict]:
    """Every finished run under the given folders; refuses results newer than this code."""
    out = []
    for root in results_dirs:
        root = Path(root)
        if not root.is_dir():
            raise HarnessError(f"{root}: results folder not found")
        for path in sorted(root.glob("*/result.json")):
            result = read_json(path)
            version = result.get("schema_version")
            if not isinstance(version, int):
                raise HarnessError(f"{path}: missing field 'schema_version'")
            if version > SCHEMA_VERSION:
                raise HarnessError(
                    f"{path}: schema_version {version} is newer than this harness understands "
                    f"({SCHEMA_VERSION}); upgrade the harness"
                )
            result["_dir"] = str(path.parent)
            out.append(result)
    return out
