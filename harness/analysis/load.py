"""A stored run for the analysis: its result.json and samples.jsonl, found by folder, file or run id."""

from __future__ import annotations

import glob
from pathlib import Path

from harness.errors import HarnessError
from harness.fileio import read_json, read_jsonl
from harness.records import upgrade

__all__ = ["load_run", "load_samples"]


def load_samples(run_dir: str | Path) -> list[dict]:
    """Rows of <run_dir>/samples.jsonl ([] without one), by the one JSONL rule of `harness.fileio`."""
    return read_jsonl(Path(run_dir) / "samples.jsonl", key="id")


def _result(path: Path) -> dict:
    """result.json in the current layout (older versions are upgraded by the records module)."""
    data = read_json(path)
    return upgrade(data, data.get("schema_version") if isinstance(data, dict) else None, path)


def load_run(ref: str | Path, results_dir: str | Path | None = None) -> tuple[dict, list[dict]]:
    """(result, samples) of a run given as a folder, a result.json, a run id, or a unique run-id prefix."""
    ref_path = Path(ref).expanduser()
    candidates = [ref_path, ref_path.parent] if ref_path.name == "result.json" else [ref_path]
    if results_dir is not None:
        candidates.append(Path(results_dir) / str(ref))
    for folder in candidates:
        if (folder / "result.json").is_file():
            return _result(folder / "result.json"), load_samples(folder)
    # A run-id prefix is relative to results_dir; an absolute path that is not a run is just missing
    # (and pathlib refuses absolute glob patterns with NotImplementedError).
    relative = not ref_path.is_absolute()
    if relative and results_dir is not None and Path(results_dir).is_dir():
        matches = sorted(p.parent for p in Path(results_dir).glob(f"{glob.escape(str(ref))}*/result.json"))
        if len(matches) == 1:
            return _result(matches[0] / "result.json"), load_samples(matches[0])
        if len(matches) > 1:
            names = ", ".join(m.name for m in matches[:6])
            raise HarnessError(f"'{ref}' matches several runs under {results_dir}: {names}; give more of the run id")
    if not relative:
        raise HarnessError(f"{ref}: no finished run there (no result.json)")
    where = f" or under {results_dir}" if results_dir is not None else ""
    raise HarnessError(f"no finished run '{ref}' (a folder with result.json{where})")
