"""Score predictions against references: in memory (`score`) or from a JSONL file (`score_file`).

Re-scoring stored predictions needs no model: `score_file` reads the same `prediction`/`references`
rows a bench run stores, so a metric fix can be applied to old runs.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from harness.errors import HarnessError
from harness.fileio import write_text_atomic
from harness.metrics.base import get_metric

__all__ = ["DEFAULT_METRICS", "ScoreResult", "score", "metric_info", "score_file", "check_sample", "subset_metrics"]

DEFAULT_METRICS: tuple[str, ...] = (
    "relaxed_accuracy",
    "relaxed_accuracy_lenient",
    "exact_match",
    "rouge1",
    "rouge2",
    "rougeL",
    "bleu",
)


@dataclass
class ScoreResult:
    """Set-level scores by metric name, and per-sample scores of the metrics that have them."""

    aggregates: dict[str, float]
    per_sample: list[dict[str, float]] = field(default_factory=list)

    def to_dict(self) -> dict[str, object]:
        return {"aggregates": dict(self.aggregates), "per_sample": [dict(row) for row in self.per_sample]}


def check_sample(prediction: object, references: object) -> str | None:
    """Why a (prediction, references) pair cannot be scored, or None when it can."""
    if not isinstance(prediction, str):
        return f"field 'prediction' must be a string, got {type(prediction).__name__}"
    if not isinstance(references, list | tuple) or not all(isinstance(r, str) for r in references):
        return "field 'references' must be a list of strings"
    if len(references) == 0:
        return "field 'references' must not be empty"
    return None


def _metric_names(metrics: Sequence[str] | None) -> list[str]:
    if isinstance(metrics, str):
        raise HarnessError(f"metrics must be a list of names, got the string {metrics!r}")
    names = list(DEFAULT_METRICS if metrics is None else metrics)
    if not names:
        raise HarnessError("no metrics requested")
    if len(set(names)) != len(names):
        raise HarnessError(f"metric names repeated: {', '.join(names)}")
    return names


def score(
    predictions: Sequence[str],
    references: Sequence[Sequence[str]],
    metrics: Sequence[str] | None = None,
) -> ScoreResult:
    """Score every sample with each metric (default `DEFAULT_METRICS`) and aggregate over the set."""
    resolved = [get_metric(name) for name in _metric_names(metrics)]
    if len(predictions) != len(references):
        raise HarnessError(f"{len(predictions)} predictions but {len(references)} reference lists")
    if len(predictions) == 0:
        raise HarnessError("no samples to score")
    for i, (prediction, refs) in enumerate(zip(predictions, references, strict=True)):
        if isinstance(refs, Sequence) and not isinstance(refs, str):
            refs = list(refs)
        problem = check_sample(prediction, refs)
        if problem:
            raise HarnessError(f"sample {i}: {problem}")

    per_sample: list[dict[str, float]] = [{} for _ in predictions]
    aggregates: dict[str, float] = {}
    for metric in resolved:
        values = None
        if metric.has_per_sample:
            values = [metric.per_sample(p, r) for p, r in zip(predictions, references, strict=True)]
            for row, value in zip(per_sample, values, strict=True):
                row[metric.name] = value
        aggregates[metric.name] = metric.aggregate(predictions, references, values)
    return ScoreResult(aggregates=aggregates, per_sample=per_sample)


def subset_metrics(samples: Sequence[dict], data_format: dict | None,
                   aggregate: Callable[[list[dict]], dict]) -> dict | None:
    """Set scores per subset of the benchmark card's `subsets:` column: {name: {"n": count, metric: value}}.

    `aggregate` is the bench's own set scorer (engine/bench.py `_aggregate`), so a subset is scored
    exactly as the whole set is. Rows group by their stored `meta` value; rows without one are "unknown".
    None when the card declares no subsets.
    """
    from harness.data.cards import subset_name

    column = ((data_format or {}).get("subsets") or {}).get("column")
    if not column:
        return None
    subsets = data_format["subsets"]
    order = subsets.get("order") or list((subsets.get("names") or {}).values())
    groups: dict[str, list[dict]] = {name: [] for name in order}
    for row in samples:
        name = subset_name(data_format, (row.get("meta") or {}).get(column)) or "unknown"
        groups.setdefault(name, []).append(row)
    return {name: {"n": len(rows), **(aggregate(rows) if rows else {})} for name, rows in groups.items()}


def metric_info(names: Sequence[str] | None = None) -> dict[str, dict[str, object]]:
    """higher_is_better, version, scale and description per metric, to store next to results."""
    return {name: get_metric(name).info() for name in _metric_names(names)}


def _read_samples(path: Path) -> list[dict]:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise HarnessError(f"{path}: no such file") from None
    except OSError as exc:
        raise HarnessError(f"{path}: cannot read ({exc.strerror})") from None
    rows: list[dict] = []
    for lineno, line in enumerate(raw.splitlines(), start=1):
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError:
            raise HarnessError(f"{path}:{lineno}: not valid UTF-8") from None
        if not text.strip():
            continue
        try:
            row = json.loads(text)
        except json.JSONDecodeError as exc:
            raise HarnessError(f"{path}:{lineno}: invalid JSON ({exc.msg} at column {exc.colno})") from None
        if not isinstance(row, dict):
            raise HarnessError(f"{path}:{lineno}: line must be a JSON object, got {type(row).__name__}")
        for name in ("prediction", "references"):
            if name not in row:
                raise HarnessError(f"{path}:{lineno}: missing field '{name}'")
        problem = check_sample(row["prediction"], row["references"])
        if problem:
            raise HarnessError(f"{path}:{lineno}: {problem}")
        rows.append(row)
    if not rows:
        raise HarnessError(f"{path}: no samples (file is empty)")
    return rows


def score_file(
    path: str | os.PathLike,
    per_sample_out: str | os.PathLike | None = None,
    metrics: Sequence[str] | None = None,
) -> dict[str, float]:
    """Score a JSONL of {"prediction": str, "references": [str, ...]} lines; returns the aggregates.

    Other fields are allowed and carried through. `per_sample_out` gets each input line with the
    per-sample scores added as top-level fields named after the metrics (an input field with the same
    name is overwritten); corpus-only metrics (bleu) have no per-sample field.
    """
    path = Path(path)
    out = _check_out(per_sample_out) if per_sample_out is not None else None
    rows = _read_samples(path)
    result = score([r["prediction"] for r in rows], [r["references"] for r in rows], metrics)
    if out is not None:
        lines = [json.dumps({**row, **s}, ensure_ascii=False) + "\n"
                 for row, s in zip(rows, result.per_sample, strict=True)]
        try:
            write_text_atomic(out, "".join(lines))
        except OSError as exc:
            raise HarnessError(f"--per-sample {out}: cannot write ({exc.strerror or exc})") from None
    return result.aggregates


def _check_out(out: str | os.PathLike) -> Path:
    """The per-sample file, refused before any work when it is a folder or sits under a file.

    A folder is refused rather than written into: any name chosen inside it (the input's) could be the
    input itself.
    """
    out = Path(out)
    if out.is_dir():
        raise HarnessError(f"--per-sample {out}: is a folder; give a file path such as {out / 'scored.jsonl'}")
    for parent in out.parents:
        if parent.exists():
            if not parent.is_dir():
                raise HarnessError(f"--per-sample {out}: {parent} is a file, not a folder")
            break
    return out
