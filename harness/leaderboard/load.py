"""Collect stored runs and group them into leaderboard entries (one per model, variant, hardware, data).

A run is one result.json with its samples.jsonl and thumbs/. Runs that differ only in batch size form
one entry: the statistics use the smallest batch size (identical predictions across batch sizes hold
only when decoding is deterministic, so one run is chosen and the page says which), while the speed
table shows every batch size.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from harness.analysis import data_key, load_samples, pair_key
from harness.errors import HarnessError
from harness.store import load_results

__all__ = ["Entry", "Run", "collect", "group_runs"]

VARIANT_ORDER = {"base": 0, "finetuned": 1, "study": 2}


@dataclass
class Run:
    """One finished run: the result record, its samples and the folder they came from."""

    result: dict
    samples: list[dict] = field(default_factory=list)
    dir: Path | None = None
    setting: str = ""  # what sets this run apart from others of its model and variant (e.g. num_beams=4)

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
        name = f"{name} (merged)" if self.spec.get("merge_adapter") else name
        return f"{name} ({self.setting})" if self.setting else name

    @property
    def settings_key(self) -> str:
        """Everything in the spec but the batch size: runs that share it differ only in speed."""
        spec = {k: v for k, v in self.spec.items() if k not in ("batch_size", "config_hash", "run_id", "kind")}
        return json.dumps(spec, sort_keys=True, default=str)

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


def _label_settings(runs: list[Run]) -> None:
    """Runs of one model and variant with other settings (decoding, processor, ...) say how they differ."""
    by_variant: dict[tuple, list[Run]] = {}
    for run in runs:
        by_variant.setdefault((run.model, run.variant, run.pair_key), []).append(run)
    for group in by_variant.values():
        specs = {run.settings_key: run.spec for run in group}
        if len(specs) < 2 or group[0].spec.get("variant") == "base":  # base stays "base": pairs are found by it
            continue
        flat = [_flatten(spec) for spec in specs.values()]
        differing = sorted(k for k in set().union(*flat) if len({str(f.get(k)) for f in flat}) > 1
                           and not k.startswith(("adapter_id", "model_facts.environment")))
        for run in group:
            mine = _flatten(run.spec)
            run.setting = ", ".join(f"{k.rsplit('.', 1)[-1]}={mine.get(k)}" for k in differing)


def _flatten(data: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in data.items():
        if key in ("batch_size", "config_hash", "run_id", "kind"):
            continue
        if isinstance(value, dict):
            out.update(_flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def group_runs(runs: Iterable[Run]) -> list[Entry]:
    """Group runs into entries: the same spec at several batch sizes is one entry.

    Two results of the same spec, batch size and hardware (the same run from two merged folders) are
    an error naming both: keeping either silently would hide that they disagree.
    """
    runs = list(runs)
    _label_settings(runs)
    groups: dict[tuple, dict[int, Run]] = {}
    for run in runs:
        key = (run.model, run.variant, run.pair_key, run.settings_key)
        by_size = groups.setdefault(key, {})
        if run.batch_size in by_size:
            other = by_size[run.batch_size]
            raise HarnessError(f"{run.dir} and {other.dir}: the same run ({run.result.get('run_id')}) measured twice "
                               f"on {run.hardware}; pass only one of the results folders")
        by_size[run.batch_size] = run
    entries = [Entry([by_size[b] for b in sorted(by_size)]) for by_size in groups.values()]
    return sorted(entries, key=_sort_key)


def collect(results_dirs: Iterable[str | Path]) -> list[Entry]:
    """Every finished run under the folders, with its samples, grouped into entries."""
    runs = []
    for result in load_results(results_dirs):
        run_dir = Path(result.pop("_dir"))
        runs.append(Run(result=result, samples=load_samples(run_dir), dir=run_dir))
    return group_runs(runs)
