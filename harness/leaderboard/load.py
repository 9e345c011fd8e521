"""Collect stored runs and group them into leaderboard entries (one per model, variant, hardware, data).

A run is one result.json with its samples.jsonl and thumbs/. Runs that differ only in batch size form
one entry: the statistics use the smallest batch size (identical predictions across batch sizes hold
only when decoding is deterministic, so one run is chosen and the page says which), while the speed
table shows every batch size.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from harness.analysis import data_key, load_samples, pair_key
from harness.store import load_results

__all__ = ["Entry", "Run", "collect", "group_runs"]

VARIANT_ORDER = {"base": 0, "finetuned": 1, "study": 2}


@dataclass
class Run:
    """One finished run: the result record, its samples and the folder they came from."""

    result: dict
    samples: list[dict] = field(default_factory=list)
    dir: Path | None = None

    @property
    def spec(self) -> dict:
        return self.result.get("spec", {})

    @property
    def manifest(self) -> dict:
        return self.result.get("manifest", {})

    @property
    def model(self) -> str:
        return str(self.spec.get("model", "?"))

    @property
    def variant(self) -> str:
        """The variant, marked when its adapter was merged into the weights (same answers, other speed)."""
        name = str(self.spec.get("variant", "?"))
        return f"{name} (merged)" if self.spec.get("merge_adapter") else name

    @property
    def batch_size(self) -> int:
        return int(self.spec.get("batch_size") or 0)

    @property
    def hardware(self) -> str:
        return str(self.manifest.get("hardware") or "unknown hardware")

    @property
    def data_key(self) -> tuple:
        """What must match for two runs to be on the same samples (`harness.analysis.compare`)."""
        return data_key(self.result)

    @property
    def pair_key(self) -> tuple:
        """What comparable runs share: the same samples on the same hardware (`harness.analysis.compare`)."""
        return pair_key(self.result)

    @property
    def finished(self) -> str | None:
        """When the run finished (UTC date): a stored timestamp if the result has one, else the file's time."""
        stamp = self.result.get("finished_at") or self.manifest.get("finished_at")
        if stamp:
            return str(stamp)[:10]
        if self.dir is not None and (self.dir / "result.json").exists():
            mtime = (self.dir / "result.json").stat().st_mtime
            return datetime.fromtimestamp(mtime, tz=timezone.utc).strftime("%Y-%m-%d")
        return None

    def thumbnail(self, sample_id: str) -> Path | None:
        if self.dir is None:
            return None
        path = self.dir / "thumbs" / f"{sample_id}.png"
        return path if path.is_file() else None


@dataclass
class Entry:
    """One model variant on one kind of hardware and one data set; `runs` sorted by batch size."""

    runs: list[Run]

    @property
    def primary(self) -> Run:
        """The run whose predictions the statistics use: the smallest batch size."""
        return self.runs[0]

    @property
    def model(self) -> str:
        return self.primary.model

    @property
    def variant(self) -> str:
        return self.primary.variant

    @property
    def hardware(self) -> str:
        return self.primary.hardware

    @property
    def data_key(self) -> tuple:
        return self.primary.data_key

    @property
    def pair_key(self) -> tuple:
        return self.primary.pair_key

    @property
    def key(self) -> tuple:
        return (self.model, self.variant, self.pair_key)

    @property
    def label(self) -> str:
        return f"{self.model} {self.variant}"


def _sort_key(entry: Entry) -> tuple:
    return (entry.model, entry.hardware, str(entry.data_key), VARIANT_ORDER.get(entry.variant, 9), entry.variant)


def group_runs(runs: Iterable[Run]) -> list[Entry]:
    """Group runs into entries; a batch size seen twice keeps the first run (merged folders)."""
    groups: dict[tuple, dict[int, Run]] = {}
    for run in runs:
        key = (run.model, run.variant, run.pair_key)
        groups.setdefault(key, {}).setdefault(run.batch_size, run)
    entries = [Entry([by_size[b] for b in sorted(by_size)]) for by_size in groups.values()]
    return sorted(entries, key=_sort_key)


def collect(results_dirs: Iterable[str | Path]) -> list[Entry]:
    """Every finished run under the folders, with its samples, grouped into entries."""
    runs = []
    for result in load_results(results_dirs):
        run_dir = Path(result.pop("_dir"))
        runs.append(Run(result=result, samples=load_samples(run_dir), dir=run_dir))
    return group_runs(runs)
