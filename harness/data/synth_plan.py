"""Synthetic chart data and questions with exact answers (no drawing here: see ``synth_render``).

Label convention (ChartQA style), one label per question:

* numbers: plain decimal text, at most one decimal, no trailing ``.0``, no thousands separator, no
  unit: ``14``, ``3.5``, ``120``. Averages are rounded half-up to one decimal (``12.3``).
* pie charts: percentages as plain numbers without ``%`` (``25``), like ChartQA's labels; the
  chart itself prints ``25%``.
* differences are absolute (``|a - b|``); counts are integers (``3``).
* categories, series and colours: the text exactly as drawn (``banana``, ``Online``, ``blue``).

Values are kept as integer tenths, so every answer is computed exactly (no float rounding).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field, replace
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

__all__ = [
    "CHART_TYPES",
    "QUESTION_TYPES",
    "COLORS",
    "SynthChart",
    "SynthQuestion",
    "format_tenths",
    "plan_split",
    "chart_key",
]

CHART_TYPES: tuple[str, ...] = ("bar", "hbar", "line", "pie", "grouped_bar")
QUESTION_TYPES: tuple[str, ...] = (
    "value",
    "largest",
    "smallest",
    "difference",
    "sum",
    "average",
    "count_above",
    "color",
)
# Colour names a model must answer with -> the exact colour drawn (matplotlib tab10 shades).
COLORS: dict[str, str] = {
    "blue": "#1f77b4",
    "orange": "#ff7f0e",
    "green": "#2ca02c",
    "red": "#d62728",
    "purple": "#9467bd",
    "brown": "#8c564b",
    "pink": "#e377c2",
    "gray": "#7f7f7f",
}
FRUITS = ("apple", "banana", "cherry", "grape", "kiwi", "lemon", "mango", "peach", "pear", "plum")
COUNTRIES = (
    "Brazil",
    "Canada",
    "China",
    "Egypt",
    "France",
    "India",
    "Italy",
    "Japan",
    "Kenya",
    "Mexico",
    "Peru",
    "Spain",
)
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
SERIES = ("North", "South", "East", "West", "Online", "Store", "Men", "Women")
TITLES = {
    "fruits": ("Fruit sales", "Fruit harvest", "Fruit prices", "Favourite fruit"),
    "countries": ("Exports by country", "Tourists by country", "Rainfall by country", "Growth by country"),
    "months": ("Monthly sales", "Monthly visitors", "Average temperature", "Orders per month"),
}
# How many categories each chart type shows (fewer where several series share the space).
_CATEGORY_COUNTS = {"bar": (3, 6), "hbar": (3, 6), "pie": (3, 5), "grouped_bar": (3, 4)}


@dataclass(frozen=True)
class SynthQuestion:
    """A question, its exact answer, and the arguments it was built from (for re-checking)."""

    kind: str
    query: str
    answer: str
    args: dict[str, Any] = field(default_factory=dict, hash=False)


@dataclass(frozen=True)
class SynthChart:
    """Everything needed to draw one chart and to recompute its answers.

    ``values[s][c]`` is series ``s`` at category ``c`` in integer tenths (35 means 3.5).
    ``series`` is empty for single-series charts; ``colors`` holds one colour name per series.
    """

    chart_type: str
    title: str
    noun: str
    categories: tuple[str, ...]
    series: tuple[str, ...]
    values: tuple[tuple[int, ...], ...]
    colors: tuple[str, ...]
    decimals: bool
    questions: tuple[SynthQuestion, ...] = ()


def format_tenths(tenths: int) -> str:
    """Label text for a value in tenths: ``140 -> '14'``, ``35 -> '3.5'``, ``-5 -> '-0.5'``."""
    sign = "-" if tenths < 0 else ""
    whole, frac = divmod(abs(tenths), 10)
    return f"{sign}{whole}" if frac == 0 else f"{sign}{whole}.{frac}"


def chart_key(chart: SynthChart) -> tuple:
    """What makes two charts the same picture: used to keep splits from sharing charts."""
    return (chart.chart_type, chart.title, chart.categories, chart.series, chart.values, chart.colors)


def plan_split(split: str, n_rows: int, seed: int, seen: set[tuple] | None = None) -> list[SynthChart]:
    """Charts with 2-3 questions each, ``n_rows`` questions in total, deterministic for (seed, split).

    ``seen`` holds ``chart_key``s already used (other splits); new charts avoid and extend it.
    """
    rng = random.Random(f"harness-synth:{seed}:{split}")
    seen = set() if seen is None else seen
    charts: list[SynthChart] = []
    remaining = n_rows
    while remaining > 0:
        chart = _random_chart(rng)
        key = chart_key(chart)
        if key in seen:
            continue
        seen.add(key)
        wanted = min(remaining, rng.choice((2, 3)))
        kinds = _pick_kinds(chart, wanted, rng)
        questions = tuple(_ask(chart, kind, rng) for kind in kinds)
        charts.append(replace(chart, questions=questions))
        remaining -= len(questions)
    return charts


def _random_chart(rng: random.Random) -> SynthChart:
    chart_type = rng.choice(CHART_TYPES)
    if chart_type == "line":
        noun = "months"
        n = rng.randint(5, 7)
        start = rng.randrange(len(MONTHS) - n + 1)
        categories = MONTHS[start : start + n]
        n_series = rng.choice((1, 1, 2))
    else:
        noun = rng.choice(("fruits", "countries"))
        pool = FRUITS if noun == "fruits" else COUNTRIES
        n = rng.randint(*_CATEGORY_COUNTS[chart_type])
        categories = tuple(rng.sample(pool, n))
        n_series = rng.choice((2, 3)) if chart_type == "grouped_bar" else 1
    decimals = chart_type in ("bar", "hbar", "line") and n_series == 1 and rng.random() < 0.3
    if chart_type == "pie":
        values = (_pie_shares(rng, n),)
    else:
        values = tuple(_distinct_values(rng, n, decimals) for _ in range(n_series))
    series = tuple(rng.sample(SERIES, n_series)) if n_series > 1 else ()
    colors = tuple(rng.sample(list(COLORS), n_series))
    return SynthChart(chart_type, rng.choice(TITLES[noun]), noun, tuple(categories), series, values, colors, decimals)


def _distinct_values(rng: random.Random, n: int, decimals: bool) -> tuple[int, ...]:
    """Distinct values (so largest/smallest are unique): 5..95 whole, or 0.5..20.0 with one decimal."""
    if decimals:
        return tuple(rng.sample(range(5, 201), n))
    return tuple(v * 10 for v in rng.sample(range(5, 96), n))


def _pie_shares(rng: random.Random, n: int) -> tuple[int, ...]:
    """Distinct whole percentages, each at least 5, summing to 100 (in tenths)."""
    while True:
        cuts = sorted(rng.sample(range(1, 20), n - 1))
        shares = [b - a for a, b in zip([0, *cuts], [*cuts, 20])]
        values = [5 * s + rng.randint(-2, 2) for s in shares[:-1]]
        values.append(100 - sum(values))
        if min(values) >= 5 and len(set(values)) == n:
            return tuple(v * 10 for v in values)


def _pick_kinds(chart: SynthChart, wanted: int, rng: random.Random) -> list[str]:
    """Distinct question types; half the multi-series charts get a colour question, which would
    otherwise be rare (it only exists for those charts)."""
    kinds = _applicable(chart)
    if "color" in kinds:
        kinds.remove("color")
        if rng.random() < 0.5:
            return ["color", *rng.sample(kinds, wanted - 1)]
    return rng.sample(kinds, wanted)


def _applicable(chart: SynthChart) -> list[str]:
    kinds = ["value", "largest", "smallest", "difference", "sum", "count_above"]
    if chart.chart_type != "pie":
        kinds.append("average")
    if chart.series:
        kinds.append("color")
    return kinds


def _ask(chart: SynthChart, kind: str, rng: random.Random) -> SynthQuestion:
    """Build one question of ``kind`` with its exact answer."""
    s = rng.randrange(len(chart.values))
    row = chart.values[s]
    cats = chart.categories
    name = chart.series[s] if chart.series else ""
    pie = chart.chart_type == "pie"
    of = f" {name}" if name else ""  # "the North value" vs "the value"
    a_an = "an" if (name or "x")[0] in "AEIOU" else "a"
    unit = "share" if pie else "value"
    args: dict[str, Any] = {"series": s}
    if kind == "value":
        c = rng.randrange(len(cats))
        args["category"] = c
        if pie:
            query = f"What percentage does {cats[c]} account for?"
        elif name:
            query = f"What is the {name} value for {cats[c]}?"
        else:
            query = f"What is the value for {cats[c]}?"
        answer = format_tenths(row[c])
    elif kind in ("largest", "smallest"):
        pick = max if kind == "largest" else min
        word = "highest" if kind == "largest" else "lowest"
        noun = chart.noun[:-1] if chart.noun != "countries" else "country"
        query = f"Which {noun} has the {word}{of} {unit}?"
        answer = cats[row.index(pick(row))]
    elif kind == "difference":
        a, b = rng.sample(range(len(cats)), 2)
        args.update(a=a, b=b)
        query = f"What is the difference between the{of} {unit}s of {cats[a]} and {cats[b]}?"
        answer = format_tenths(abs(row[a] - row[b]))
    elif kind == "sum":
        a, b = sorted(rng.sample(range(len(cats)), 2))
        args.update(a=a, b=b)
        query = f"What is the sum of the{of} {unit}s of {cats[a]} and {cats[b]}?"
        answer = format_tenths(row[a] + row[b])
    elif kind == "average":
        query = f"What is the average{of} value across all {chart.noun}?"
        mean = (Decimal(sum(row)) / Decimal(10 * len(row))).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)
        answer = format_tenths(int(mean * 10))
    elif kind == "count_above":
        threshold = _threshold(row, rng)
        args["threshold"] = threshold
        suffix = "%" if pie else ""
        query = f"How many {chart.noun} have {a_an}{of} {unit} above {format_tenths(threshold)}{suffix}?"
        answer = str(sum(1 for v in row if v > threshold))
    elif kind == "color":
        query = f"What color is the {name} series?"
        answer = chart.colors[s]
    else:
        raise ValueError(f"unknown question type {kind!r}")
    return SynthQuestion(kind, query, answer, args)


def _threshold(row: tuple[int, ...], rng: random.Random) -> int:
    """A threshold in tenths inside [min, max) ("above" is strict), preferring round numbers
    that equal no value, so the count never hinges on reading a bar exactly at the line."""
    lo, hi = min(row), max(row)
    inside = [t for t in range(lo, hi) if t not in row]
    for step in (50, 10, 1):
        choices = [t for t in inside if t % step == 0]
        if choices:
            return rng.choice(choices)
    return lo
