"""Per-subset scores and published reference scores, each in its own table, never in our results columns.

Published numbers come from the model cards' `published:` lists (read like preset banners, by the
writer, not by the pure page builder) and are shown only for a benchmark the page has runs of.
"""

from __future__ import annotations

from harness.errors import HarnessError
from harness.leaderboard.analyze import ACCURACY, Analysis, metric_scale
from harness.leaderboard.doc import Cell, Table
from harness.leaderboard.load import Entry

__all__ = ["prompt_label", "published_refs", "published_table", "subset_names", "subset_table"]

DASH = "–"


def prompt_label(e: Entry) -> str:
    """The prompt variant of an entry's runs: its name, or the start of its text for older runs."""
    spec = e.primary.spec
    if spec.get("prompt_name"):
        return str(spec["prompt_name"])
    text = " ".join(str(spec.get("prompt_suffix") or "").split())
    return f"“{text[:30]}…”" if len(text) > 30 else (f"“{text}”" if text else "(none)")


def subset_names(e: Entry) -> list[str]:
    """Subset names in the order the benchmark card lists them, then any others the result has."""
    subsets = (e.primary.spec.get("data_format") or {}).get("subsets") or {}
    names = list(subsets.get("order") or (subsets.get("names") or {}).values())
    stored = list(e.primary.result.get("subset_metrics") or {})
    return list(dict.fromkeys([*names, *stored]))


def _pct(value, scale: float) -> str:
    return DASH if value is None else f"{value * scale:.1f}"


def subset_table(a: Analysis) -> Table | None:
    """Relaxed accuracy overall and per subset (e.g. ChartQA's augmented / human), with counts."""
    entries = [e for e in a.ranked() if e.primary.result.get("subset_metrics")]
    if not entries:
        return None
    names = list(dict.fromkeys(n for e in entries for n in subset_names(e)))
    scale = metric_scale(a.entries, ACCURACY)
    rows = []
    for e in entries:
        result = e.primary.result
        subsets = result.get("subset_metrics") or {}
        overall = (result.get("metrics") or {}).get(ACCURACY)
        row: list = [e.model, e.variant, e.hardware, str(e.primary.spec.get("benchmark", "?")), prompt_label(e),
                     Cell(f"{_pct(overall, scale)} (n={result.get('num_samples')})",
                          sort=None if overall is None else round(overall * scale, 6))]
        for n in names:
            got = subsets.get(n) or {}
            value = got.get(ACCURACY)
            row.append(Cell(f"{_pct(value, scale)} (n={got.get('n', 0)})" if got else DASH,
                            sort=None if value is None else round(value * scale, 6)))
        rows.append(row)
    return Table(["model", "variant", "hardware", "benchmark", "prompt", "overall", *names], rows, name="subsets",
                 numeric=tuple(range(5, 6 + len(names))))


def published_refs(entries: list[Entry]) -> list[dict]:
    """The cards' published scores for the benchmarks these entries ran, with the model name added."""
    from harness.registry import load_model

    ran: dict[str, set[str]] = {}
    for e in entries:
        ran.setdefault(e.model, set()).add(str(e.primary.spec.get("benchmark")))
    refs = []
    for model in sorted(ran):
        try:
            card = load_model(model)
        except HarnessError:
            continue  # a run of a card that is gone: nothing published to show
        refs += [{**ref, "model": model} for ref in card.published if ref.get("benchmark") in ran[model]]
    return refs


def _ours(a: Analysis, ref: dict) -> Cell:
    """Our base-variant score on the same benchmark and subset, labelled as ours and with its count."""
    mine = [e for e in a.entries if e.model == ref["model"] and e.primary.spec.get("variant") == "base"
            and e.primary.spec.get("benchmark") == ref["benchmark"]]
    if not mine:
        return Cell(DASH)
    e = mine[0]
    metric, scale = ref["metric"], metric_scale(a.entries, ref["metric"])
    if ref.get("subset"):
        got = (e.primary.result.get("subset_metrics") or {}).get(ref["subset"]) or {}
        value, n = got.get(metric), got.get("n")
    else:
        value, n = (e.primary.result.get("metrics") or {}).get(metric), e.primary.result.get("num_samples")
    if value is None:
        return Cell(DASH)
    return Cell(f"{value * scale:.1f} (base, n={n}, prompt {prompt_label(e)})", sort=round(value * scale, 6))


def published_table(a: Analysis, refs: list[dict]) -> Table | None:
    if not refs:
        return None
    rows = [[ref["model"], ref["benchmark"], ref.get("subset") or "overall", ref["metric"],
             Cell(f"{float(ref['value']):.2f}".rstrip("0").rstrip("."), sort=float(ref["value"])),
             str(ref["source"]), str(ref.get("note") or ""), _ours(a, ref)] for ref in refs]
    return Table(["model", "benchmark", "subset", "metric", "published", "source", "note", "ours (this page)"],
                 rows, name="published", numeric=(4, 7))
