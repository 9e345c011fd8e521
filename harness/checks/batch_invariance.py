"""`harness check batch-invariance`: the same questions at batch 1 and batch N must get the same answers.

Peers shipped scores that moved with batch size (lmms-eval #970: Qwen2-VL-2B OCRBench 0.763 at batch 1,
0.605 at batch 2, from images mixed within a batch and the wrong padding side). Both runs are ordinary
planned runs (stored under their run ids, reused when finished), so this module only plans them,
hands them to the orchestrator and compares what they stored, sample by sample (by id).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from harness.errors import HarnessError
from harness.fileio import read_json, read_jsonl
from harness.records import RunResult

__all__ = ["Disagreement", "PairReport", "compare_stored", "run_check", "verdict"]

# Spec fields that may differ between the two runs of one comparison; anything else means other questions
# or other settings, and the comparison would not be about batch size.
_ALLOWED_TO_DIFFER = {"batch_size", "config_hash", "run_id"}


@dataclass(frozen=True)
class Disagreement:
    id: str
    reference: str | None  # the prediction at batch 1 (None: the sample is missing from that run)
    batched: str | None  # the prediction at batch N


@dataclass(frozen=True)
class PairReport:
    """One model variant: its batch-1 run against its batch-N run."""

    model: str
    variant: str
    batch_sizes: tuple[int, int]
    run_ids: tuple[str, str]
    samples: int  # sample ids in either run
    identical: int  # ids present in both with the same prediction text
    same_generation: int  # of those, also the same raw output and generated-token count
    metrics: dict  # name -> (value at batch 1, value at batch N)
    disagreements: tuple[Disagreement, ...]  # every disagreeing sample, in id order of the batch-1 run

    @property
    def share(self) -> float:
        return self.identical / self.samples if self.samples else 1.0

    @property
    def label(self) -> str:
        return f"{self.model}/{self.variant}"

    def lines(self, show: int = 3) -> list[str]:
        a, b = self.batch_sizes
        out = [f"{self.label}: batch size {a} ({self.run_ids[0]}) vs batch size {b} ({self.run_ids[1]})",
               f"  identical predictions: {self.identical}/{self.samples} samples "
               f"(share {self.share:.4f})",
               f"  identical generations (raw output and generated-token count): "
               f"{self.same_generation}/{self.samples} samples"]
        for name, (va, vb) in self.metrics.items():
            diff = f"{vb - va:+.4f}" if va is not None and vb is not None else "n/a"
            out.append(f"  {name}: {_num(va)} at batch size {a}, {_num(vb)} at batch size {b} "
                       f"(difference {diff})")
        if self.disagreements:
            out.append(f"  first {min(show, len(self.disagreements))} of {len(self.disagreements)} "
                       "disagreeing samples:")
            out += [f"    {d.id}: batch size {a} {_text(d.reference)} | batch size {b} {_text(d.batched)}"
                    for d in self.disagreements[:show]]
        return out


def _num(value) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def _text(prediction: str | None) -> str:
    return "(missing)" if prediction is None else repr(prediction)


def _load(folder: Path) -> tuple[dict, list[dict]]:
    path = folder / "result.json"
    if not path.exists():
        raise HarnessError(f"{path}: not found (the run did not finish)")
    result = read_json(path)
    RunResult.from_dict(result, path)
    return result, read_jsonl(folder / "samples.jsonl", key="id")


def compare_stored(reference: str | Path, batched: str | Path) -> PairReport:
    """Compare two stored runs of the same questions that differ only in batch size."""
    (res_a, rows_a), (res_b, rows_b) = _load(Path(reference)), _load(Path(batched))
    spec_a, spec_b = res_a["spec"], res_b["spec"]
    differ = sorted(k for k in set(spec_a) | set(spec_b) if k not in _ALLOWED_TO_DIFFER
                    and spec_a.get(k) != spec_b.get(k))
    if differ:
        raise HarnessError(f"{reference} and {batched}: the runs differ in '{differ[0]}', not only in batch size")
    by_id_b = {row["id"]: row for row in rows_b}
    ids_a = [row["id"] for row in rows_a]
    ids = ids_a + [i for i in by_id_b if i not in set(ids_a)]
    by_id_a = {row["id"]: row for row in rows_a}
    identical = same_generation = 0
    disagreements = []
    for sample_id in ids:
        row_a, row_b = by_id_a.get(sample_id), by_id_b.get(sample_id)
        if row_a and row_b and row_a["prediction"] == row_b["prediction"]:
            identical += 1
            keys = ("raw_output", "generated_tokens")
            same_generation += all(row_a.get(k) == row_b.get(k) for k in keys)
            continue
        disagreements.append(Disagreement(sample_id, row_a and row_a["prediction"], row_b and row_b["prediction"]))
    metrics_a, metrics_b = res_a.get("metrics") or {}, res_b.get("metrics") or {}
    names = list(metrics_a) + [n for n in metrics_b if n not in metrics_a]
    return PairReport(
        model=spec_a["model"], variant=spec_a["variant"],
        batch_sizes=(spec_a["batch_size"], spec_b["batch_size"]), run_ids=(res_a["run_id"], res_b["run_id"]),
        samples=len(ids), identical=identical, same_generation=same_generation,
        metrics={n: (metrics_a.get(n), metrics_b.get(n)) for n in names}, disagreements=tuple(disagreements))


def verdict(reports: list[PairReport], tolerance: float) -> list[str]:
    """One line per variant whose share of identical predictions is below 1 - tolerance (empty: all pass)."""
    need = 1.0 - tolerance
    return [f"batch invariance FAILED for {r.label}: {r.identical}/{r.samples} identical predictions "
            f"(share {r.share:.4f}) at batch size {r.batch_sizes[1]} vs {r.batch_sizes[0]}, below the required "
            f"share {need:.4f} (--tolerance {tolerance:g})" for r in reports if r.share < need - 1e-12]


def run_check(request, batch_size: int, paths, options) -> tuple[list[PairReport], list[str]]:
    """Plan `request` at batch sizes 1 and `batch_size`, execute it, compare each variant's two runs.

    Returns the reports and one line per variant that could not be compared (a run failed or was skipped).
    """
    from harness.orchestrate import execute_plan
    from harness.plan import plan
    from harness.progress import log

    if batch_size < 2:
        raise HarnessError(f"--batch-size {batch_size}: compare batch size 1 with a larger one (e.g. 8)")
    p = plan(replace(request, batch_sizes=(1, batch_size)))
    for line in p.skipped:
        log(line)
    if not p.runs:
        raise HarnessError("batch-invariance: nothing to compare for these models and variants")
    outcomes = {o.job_id: o for o in execute_plan(p, paths, options)}
    pairs: dict[tuple[str, str], dict[int, object]] = {}
    for spec in p.runs:
        pairs.setdefault((spec.model, spec.variant), {})[spec.batch_size] = spec
    reports, problems = [], []
    for (model, variant), specs in pairs.items():
        missing = [s.run_id for s in specs.values() if not (outcomes.get(s.run_id) and outcomes[s.run_id].ok)]
        if missing:
            problems.append(f"{model}/{variant}: not compared, run {missing[0]} did not finish (see above)")
            continue
        reports.append(compare_stored(paths.run_dir(specs[1].run_id), paths.run_dir(specs[batch_size].run_id)))
    return reports, problems
