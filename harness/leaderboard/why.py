"""'Why slower' explanations: which variant or model is slower, and what the time goes into.

The analysis itself is `harness.analysis.explain_pair`; this module picks the comparisons worth
explaining (among comparable runs, `harness.analysis.comparable`) and renders each Explanation
object as document blocks.
"""

from __future__ import annotations

from harness.analysis import Explanation, comparable, explain_pair
from harness.analysis.words import number, setting_text
from harness.leaderboard.doc import Block, Bullets, Cell, Heading, Para, Strong, Table
from harness.leaderboard.load import Entry, Run

__all__ = ["comparisons", "explanation_blocks", "why_blocks"]

MIN_GAP = 0.05  # explain pairs whose p50 latencies differ by more than 5%


def _p50(run: Run) -> float | None:
    summary = run.result.get("latency", {}).get("latency_ms")
    return None if not summary else summary.get("p50")


def _same_size(a: Entry, b: Entry) -> tuple[Run, Run] | None:
    """Runs of both entries at the smallest batch size they share."""
    sizes = {r.batch_size: r for r in a.runs}
    for run in b.runs:
        if run.batch_size in sizes:
            return sizes[run.batch_size], run
    return None


def comparisons(entries: list[Entry]) -> list[tuple[Run, Run]]:
    """(faster, slower) run pairs: each variant vs its base, and each base vs the fastest other base."""
    out: list[tuple[Run, Run]] = []

    def add(a: Entry, b: Entry) -> None:
        runs = _same_size(a, b)
        if runs is None:
            return
        fast, slow = sorted(runs, key=lambda r: _p50(r) or 0.0)
        lf, ls = _p50(fast), _p50(slow)
        if lf and ls and ls > lf * (1 + MIN_GAP) and (fast, slow) not in out:
            out.append((fast, slow))

    bases = [e for e in entries if e.variant == "base"]
    for e in entries:
        for base in bases:
            if e is not base and e.model == base.model and comparable(e.primary.result, base.primary.result):
                add(base, e)
    for key in dict.fromkeys(b.pair_key for b in bases):
        group = [b for b in bases if b.pair_key == key]
        timed = [b for b in group if _p50(b.primary)]
        if len(timed) < 2:
            continue
        fastest = min(timed, key=lambda b: _p50(b.primary))
        for b in timed:
            if b is not fastest:
                add(fastest, b)
    return out


def _name(run: Run) -> str:
    return f"{run.model} {run.variant} (batch {run.batch_size}, {run.hardware})"


def _num(value, signed: bool = False) -> Cell:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return Cell("–" if value is None else str(value))
    return Cell(number(value, signed), sort=round(float(value), 6))


def _share(value) -> Cell:
    return Cell("" if value is None else f"{100 * float(value):.0f}%", sort=None if value is None else float(value))


def _bold_spans(text: str) -> list:
    """The headline marks its verdict with **...**: keep that as Strong, everything else as text."""
    return [Strong(part) if i % 2 else part for i, part in enumerate(str(text).split("**")) if part]


def _quantity(text: str) -> str:
    """Sub-rows are indented with spaces, which Markdown drops: mark them visibly instead."""
    return "↳ " + text.strip() if text.startswith("  ") else text


def explanation_blocks(ex: Explanation, index: int) -> list[Block]:
    """An Explanation as blocks: headline, figures, differing settings, causes, notes."""
    blocks: list[Block] = [Para(_bold_spans(ex.headline))]
    blocks.append(Table(["quantity", "A (faster)", "B (slower)", "B − A", "share of the difference"],
                        [[_quantity(row.quantity), _num(row.a), _num(row.b), _num(row.delta, True), _share(row.share)]
                         for row in ex.rows], name=f"why-{index}-figures", numeric=(1, 2, 3, 4)))
    if ex.differing:
        blocks.append(Table(["setting that differs", "A", "B"],
                            [[s.factor, setting_text(s.a), setting_text(s.b)] for s in ex.differing],
                            name=f"why-{index}-settings"))
    blocks.append(Table(["cause", "share of the difference", "explanation"],
                        [[c.name, _share(c.share), c.sentence] for c in ex.causes], name=f"why-{index}-causes",
                        numeric=(1,)))
    if ex.notes:
        blocks.append(Bullets([["Note: ", str(n)] for n in ex.notes]))
    return blocks


def why_blocks(entries: list[Entry]) -> list[Block]:
    pairs = comparisons(entries)
    if not pairs:
        return [Para(["No pair of runs differs in p50 latency by more than "
                      f"{MIN_GAP:.0%} at a shared batch size, so there is nothing to explain."])]
    blocks: list[Block] = [Para([
        "Each variant against its base model, and each base model against the fastest base model on the same "
        "hardware, at the smallest batch size both ran, when their p50 latencies differ by more than "
        f"{MIN_GAP:.0%}. A is the faster run, B the slower; the difference in mean latency is split into causes "
        "whose shares add up to 100% (negative shares worked the other way)."])]
    for i, (fast, slow) in enumerate(pairs):
        blocks.append(Heading(3, f"Why {_name(slow)} is slower than {_name(fast)}", anchor=f"why-{i}"))
        explanation = explain_pair(fast.result, slow.result, samples_a=fast.samples or None,
                                   samples_b=slow.samples or None)
        blocks += explanation_blocks(explanation, i)
    return blocks
