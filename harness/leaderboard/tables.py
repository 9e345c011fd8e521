"""The page's tables as document blocks: results, base vs fine-tuned, groups, speed, fine-tunes."""

from __future__ import annotations

from harness.leaderboard.analyze import ACCURACY, Analysis, metric_scale
from harness.leaderboard.doc import Cell, Code, Table
from harness.leaderboard.load import Entry, Run
from harness.leaderboard.published import prompt_label
from harness.trackers.memory import peak_memory

__all__ = [
    "METRIC_LABELS",
    "by_group_table",
    "finetune_table",
    "fmt_p",
    "main_table",
    "multi_data",
    "pairs_table",
    "speed_table",
]

METRIC_LABELS = {
    "relaxed_accuracy": "relaxed acc",
    "relaxed_accuracy_lenient": "lenient acc",
    "exact_match": "exact match",
    "rouge1": "ROUGE-1",
    "rouge2": "ROUGE-2",
    "rougeL": "ROUGE-L",
    "bleu": "BLEU",
}
DASH = "–"


def label(name: str) -> str:
    return METRIC_LABELS.get(name, name)


def multi_data(a: Analysis) -> bool:
    return len({e.data_key for e in a.entries}) > 1


def _data_label(e: Entry) -> str:
    s = e.primary.spec
    return f"{s.get('dataset')}:{s.get('split')}"


def _num(value: float | None, digits: int = 1, sign: bool = False) -> Cell:
    if value is None:
        return Cell(DASH)
    return Cell(f"{value:+.{digits}f}" if sign else f"{value:,.{digits}f}", sort=round(float(value), 6))


def fmt_p(p: float) -> str:
    return "< 0.001" if p < 0.001 else f"{p:.3f}"


def main_table(a: Analysis) -> Table:
    headers = ["#", "model", "variant", "prompt", "hardware", *(["data"] if multi_data(a) else []), "n", "stats from",
               *(f"{label(m)} (95% CI)" for m in a.metrics)]
    first_metric = len(headers) - len(a.metrics)
    rows = []
    for rank, e in enumerate(a.ranked(), start=1):
        row: list = [Cell(str(rank), sort=rank), e.model, e.variant, prompt_label(e), e.hardware]
        if multi_data(a):
            row.append(_data_label(e))
        row += [Cell(str(len(e.primary.samples)), sort=len(e.primary.samples)), f"batch {e.primary.batch_size}"]
        for m in a.metrics:
            ci, scale = a.cis.get(e.key, {}).get(m), metric_scale(a.entries, m)
            if ci is None:
                stored = e.primary.result.get("metrics", {}).get(m)
                row.append(_num(None if stored is None else stored * scale))
            else:
                row.append(Cell(f"{ci.estimate * scale:.1f} ({ci.low * scale:.1f}, {ci.high * scale:.1f})",
                                sort=round(ci.estimate * scale, 6)))
        rows.append(row)
    numeric = (0, headers.index("n"), *range(first_metric, len(headers)))
    return Table(headers, rows, name="results", numeric=numeric)


def pairs_table(a: Analysis) -> Table:
    headers = ["model", "hardware", "comparison", "metric", "base", "other", "Δ other − base (95% CI)", "p",
               "significant at 5%", "test", "fixed / broken"]
    rows = []
    for pair in a.pairs:
        for m in a.metrics:
            t = pair.tests.get(m)
            if t is None:
                continue
            s = metric_scale(a.entries, m)
            delta = f"{t.delta * s:+.1f}"
            if t.low is not None and t.high is not None:
                delta += f" ({t.low * s:+.1f}, {t.high * s:+.1f})"
            mc = t.b01 is not None
            rows.append([
                pair.other.model, pair.other.hardware, f"{pair.other.variant} vs base", label(m),
                _num(t.estimate_a * s), _num(t.estimate_b * s), Cell(delta, sort=round(t.delta * s, 6)),
                Cell(fmt_p(t.p_value), sort=t.p_value), "yes" if t.p_value < 0.05 else "no",
                "McNemar (exact)" if mc else ("paired bootstrap, corpus" if m == "bleu" else "paired bootstrap"),
                f"{t.b01} / {t.b10}" if mc else DASH,
            ])
    return Table(headers, rows, name="pairs", numeric=(4, 5, 6, 7))


def by_group_table(a: Analysis) -> Table:
    groups = sorted({g for per in a.groups.values() for g in per})
    rows = []
    for e in a.ranked():
        per = a.groups.get(e.key, {})
        row: list = [e.model, e.variant, e.hardware]
        for g in groups:
            ci = per.get(g)
            n = sum(1 for s in e.primary.samples if _group_of(s, a.group_field) == g)
            row.append(Cell(f"{ci.estimate * 100:.1f} ({ci.low * 100:.0f}, {ci.high * 100:.0f}) n={n}",
                            sort=round(ci.estimate * 100, 6)) if ci else Cell(DASH))
        rows.append(row)
    return Table(["model", "variant", "hardware", *groups], rows, name="groups",
                 numeric=tuple(range(3, 3 + len(groups))))


def _group_of(sample: dict, field: str) -> str:
    from harness.metrics import answer_type

    if field == "question_type":
        return str((sample.get("meta") or {}).get("question_type"))
    return answer_type(sample.get("references") or [])


def _stat(run: Run, name: str, key: str = "p50") -> float | None:
    summary = run.result.get("latency", {}).get(name)
    return None if not summary else summary.get(key)


def best_run(e: Entry) -> Run:
    """The batch size with the highest throughput (samples/s)."""
    return max(e.runs, key=lambda r: r.result.get("latency", {}).get("samples_per_s") or 0.0)


def speed_table(a: Analysis) -> Table:
    headers = ["model", "variant", "hardware", "batch", "p50 latency ms", "p95 latency ms", "prefill p50 ms",
               "decode ms/token p50", "tokens/answer", "samples/s", "peak memory MB", "memory measure",
               "best batch size"]
    rows = []
    for e in a.entries:
        best = best_run(e)
        for run in e.runs:
            what, mem = peak_memory(run.result.get("memory"))
            rows.append([
                e.model, e.variant, e.hardware, Cell(str(run.batch_size), sort=run.batch_size),
                _num(_stat(run, "latency_ms")), _num(_stat(run, "latency_ms", "p95")),
                _num(_stat(run, "prefill_ms")), _num(_stat(run, "decode_ms_per_token"), 2),
                _num(_stat(run, "generated_tokens", "mean"), 2),
                _num(run.result.get("latency", {}).get("samples_per_s"), 2), _num(mem, 0),
                Code(what) if what else DASH,
                f"★ {best.batch_size}" if run is best else str(best.batch_size),
            ])
    return Table(headers, rows, name="speed", numeric=tuple(range(3, 11)))


def finetune_records(a: Analysis) -> list[tuple[Entry, dict]]:
    """One training record per fine-tuned entry (it travels inside each of its runs' results)."""
    return [(e, e.primary.result["finetune"]) for e in a.entries if e.primary.result.get("finetune")]


def finetune_table(a: Analysis) -> Table:
    headers = ["model", "variant", "trained on", "adapter", "method", "trainable params", "steps", "train samples",
               "wall time s", "samples/s", "peak memory MB", "loss first → final"]
    rows = []
    for e, rec in finetune_records(a):
        trainable, total = rec.get("trainable_params"), rec.get("total_params")
        share = f" ({100 * trainable / total:.2f}% of {total:,})" if trainable and total else ""
        what, mem = peak_memory(rec.get("memory"))
        steps = rec.get("steps")
        detail = (f" ({rec.get('epochs')} epochs × batch {rec.get('batch_size')} × accum {rec.get('grad_accum')})"
                  if rec.get("epochs") else "")
        first, final = rec.get("first_loss"), rec.get("final_loss")
        rows.append([
            e.model, e.variant, rec.get("device") or e.hardware, Code(str(rec.get("adapter_id", DASH))),
            str(rec.get("method", DASH)),
            Cell(f"{trainable:,}{share}" if trainable is not None else DASH, sort=trainable),
            Cell(f"{steps}{detail}" if steps is not None else DASH, sort=steps),
            _num(rec.get("train_samples"), 0), _num(rec.get("wall_time_s"), 1), _num(rec.get("samples_per_s"), 2),
            Cell(f"{mem:,.0f} ({what})" if mem is not None else DASH, sort=mem),
            Cell(f"{first:.3f} → {final:.3f}" if first is not None and final is not None else DASH, sort=final),
        ])
    return Table(headers, rows, name="finetune", numeric=(5, 6, 7, 8, 9, 10, 11))


def accuracy_cell(a: Analysis, e: Entry) -> float | None:
    ci = a.cis.get(e.key, {}).get(ACCURACY)
    return None if ci is None else ci.estimate * 100
