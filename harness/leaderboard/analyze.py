"""Everything the page shows that needs computing: CIs per entry, paired tests per pair, groups.

`analyze` is pure (entries in, numbers out); `to_json` is the machine-readable copy written next to
the page, so every interval and p-value can be checked without parsing Markdown.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from harness.leaderboard.load import Entry
from harness.leaderboard.stats import StatsOptions, entry_cis, group_accuracy, group_field, pair_tests
from harness.metrics import DEFAULT_METRICS
from harness.stats import CI, PairedTest

__all__ = ["Analysis", "Pair", "analyze", "metric_names", "metric_scale", "to_json"]

ACCURACY = "relaxed_accuracy"


def metric_names(entries: list[Entry]) -> list[str]:
    """Metrics present in any result, in the registry's order, unknown ones last."""
    seen: dict[str, None] = {}
    for e in entries:
        seen.update(dict.fromkeys(e.primary.result.get("metrics", {})))
    ordered = [m for m in DEFAULT_METRICS if m in seen]
    return ordered + sorted(m for m in seen if m not in ordered)


def metric_scale(entries: list[Entry], name: str) -> float:
    """Multiplier to show a metric as 0-100 (fractions x100, BLEU as is)."""
    for e in entries:
        info = e.primary.result.get("metric_info", {}).get(name)
        if info:
            return 1.0 if info.get("scale") == "0-100" else 100.0
    return 1.0 if name == "bleu" else 100.0


@dataclass
class Pair:
    """A base entry and a variant of the same model, comparable runs (same samples and hardware)."""

    base: Entry
    other: Entry
    tests: dict[str, PairedTest]
    n_shared: int


@dataclass
class Analysis:
    entries: list[Entry]
    metrics: list[str]
    options: StatsOptions
    cis: dict[tuple, dict[str, CI]]
    pairs: list[Pair]
    group_field: str
    groups: dict[tuple, dict[str, CI]] = field(default_factory=dict)

    def accuracy(self, entry: Entry) -> CI | None:
        return self.cis.get(entry.key, {}).get(ACCURACY)

    def ranked(self) -> list[Entry]:
        """Entries by relaxed accuracy, best first; ties keep the stable model/variant order."""
        def score(e: Entry) -> float:
            ci = self.accuracy(e)
            return -(ci.estimate if ci else e.primary.result.get("metrics", {}).get(ACCURACY) or 0.0)

        return sorted(self.entries, key=score)


def _pairs(entries: list[Entry], metrics: list[str], options: StatsOptions) -> list[Pair]:
    """Each variant with the base of its model among the comparable runs (`harness.analysis.compare`)."""
    bases = {(e.model, e.pair_key): e for e in entries if e.variant == "base"}
    out = []
    for e in entries:
        base = bases.get((e.model, e.pair_key))
        if e.variant == "base" or base is None:
            continue
        tests = pair_tests(base.primary.samples, e.primary.samples, metrics, options)
        shared = len({s.get("id") for s in base.primary.samples} & {s.get("id") for s in e.primary.samples})
        out.append(Pair(base, e, tests, shared))
    return out


def analyze(entries: list[Entry], options: StatsOptions | None = None) -> Analysis:
    options = options or StatsOptions()
    metrics = metric_names(entries)
    cis = {e.key: entry_cis(e.primary.samples, metrics, options) for e in entries}
    all_samples = [s for e in entries for s in e.primary.samples]
    field_name = group_field(all_samples)
    groups = {e.key: group_accuracy(e.primary.samples, field_name, ACCURACY, options) for e in entries
              if ACCURACY in metrics}
    return Analysis(entries, metrics, options, cis, _pairs(entries, metrics, options), field_name, groups)


def _entry_id(e: Entry) -> dict:
    return {"model": e.model, "variant": e.variant, "hardware": e.hardware, "run_id": e.primary.result.get("run_id"),
            "batch_size": e.primary.batch_size, "dataset": e.primary.spec.get("dataset"),
            "split": e.primary.spec.get("split")}


def to_json(a: Analysis) -> dict:
    return {
        "about": "95% intervals and paired tests behind the leaderboard page; metrics on their own scale "
                 "(fractions 0-1, BLEU 0-100)",
        "statistics": {"n_resamples": a.options.n_resamples, "confidence": a.options.confidence,
                       "seed": a.options.seed},
        "entries": [{**_entry_id(e), "metrics": {k: v.to_dict() for k, v in a.cis.get(e.key, {}).items()},
                     f"{ACCURACY}_by_{a.group_field}": {k: v.to_dict() for k, v in a.groups.get(e.key, {}).items()}}
                    for e in a.ranked()],
        "pairs": [{"a": _entry_id(p.base), "b": _entry_id(p.other), "shared_samples": p.n_shared,
                   "tests": {k: v.to_dict() for k, v in p.tests.items()}} for p in a.pairs],
    }
