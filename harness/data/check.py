"""`harness data check DIR_OR_ID [--benchmark NAME] [--split S]`: a data set against a benchmark card.

Reads every row's text and image header (never decodes pixels, loads no model) and reports splits, row
counts, the image size range, subset counts and the first problems, each naming its file/row and field.
The checks are the loader's own (open_split, the card's apply_format, validate_features, check_row), so
what passes here loads in a run.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass, field
from pathlib import Path

from harness.errors import HarnessError

__all__ = ["SplitReport", "check_data", "data_splits", "format_report"]

MAX_PROBLEMS = 5
_BATCH = 256


@dataclass
class SplitReport:
    split: str
    where: str = ""
    rows: int = 0
    sizes: list[tuple[int, int]] = field(default_factory=list)  # (width, height) of every readable image
    subsets: dict[str, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)  # the first MAX_PROBLEMS
    problem_count: int = 0

    def problem(self, text: str) -> None:
        self.problem_count += 1
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(text)


def data_splits(source: str, default: str) -> list[str]:
    """The splits a source holds, from its layout alone; a hub id or a one-split layout: [default]."""
    from harness.data.layout import local_splits
    from harness.data.local import local_layout

    path = Path(os.path.expanduser(source))
    layout = local_layout(path)
    if layout is not None:
        return layout.splits or [default]
    if path.is_dir():
        return local_splits(path) or [default]
    return [default]


def check_data(source: str, benchmark: str | None = None, split: str | None = None) -> tuple[str, list[SplitReport]]:
    """(header line, one report per split) for `source` read as benchmark card `benchmark` says."""
    from harness.data.cards import data_format
    from harness.registry import load_benchmark

    bench = load_benchmark(benchmark or "chartqa")
    fmt = data_format(bench)
    revision = bench.dataset_revision if source == bench.dataset else None
    splits = [split] if split else data_splits(source, bench.split)
    mapped = ", ".join(f"{k}={v}" for k, v in (fmt or {}).get("columns", {}).items()) or "canonical names"
    header = (f"{source} against benchmark card {bench.name} (columns: {mapped}; label_shape: {bench.label_shape}"
              + (f"; subsets by {bench.subsets['column']}" if bench.subsets else "") + ")")
    return header, [_check_split(source, s, revision, fmt) for s in splits]


def _check_split(source: str, split: str, revision: str | None, fmt: dict | None) -> SplitReport:
    from harness.data.cards import apply_format
    from harness.data.load import open_split
    from harness.data.schema import validate_features

    report = SplitReport(split)
    try:
        opened = open_split(source, split, revision=revision, data_format=fmt)
        report.where = opened.where
        ds = apply_format(opened.dataset, fmt, opened.where)
        validate_features(ds.features, opened.where)
    except HarnessError as exc:
        report.problem(str(exc))
        return report
    report.rows = len(ds)
    report.subsets = {name: 0 for name in ((fmt or {}).get("subsets") or {}).get("order", [])}
    _check_rows(ds, opened.row_where, fmt, report)
    return report


def _check_rows(ds, row_where, fmt: dict | None, report: SplitReport) -> None:
    from PIL import Image

    from harness.data.cards import subset_name
    from harness.data.schema import check_image, check_row, image_bytes

    column = ((fmt or {}).get("subsets") or {}).get("column")
    names = ["image", "query", "label", *([column] if column else [])]
    table = ds.select_columns(names).with_format("arrow")
    for start in range(0, len(ds), _BATCH):
        batch = table[start : start + _BATCH]
        cols = {n: batch.column(n).to_pylist() for n in names}
        for offset in range(batch.num_rows):
            where = row_where(start + offset)
            try:
                check_row(cols["query"][offset], cols["label"][offset], where)
                data = image_bytes(cols["image"][offset], where)
                check_image(data, where)
                with Image.open(io.BytesIO(data)) as img:  # the header only: no pixels decoded
                    report.sizes.append(img.size)
            except HarnessError as exc:
                report.problem(str(exc))
            if column:
                name = subset_name(fmt, cols[column][offset]) or "missing"
                report.subsets[name] = report.subsets.get(name, 0) + 1


def format_report(header: str, reports: list[SplitReport]) -> str:
    lines = [header]
    for r in reports:
        if r.sizes:
            widths, heights = [w for w, _ in r.sizes], [h for _, h in r.sizes]
            size = f"images {min(widths)}-{max(widths)} x {min(heights)}-{max(heights)} px"
        else:
            size = "no readable images"
        subsets = (" ; subsets: " + ", ".join(f"{k} {v}" for k, v in r.subsets.items())) if r.subsets else ""
        lines.append(f"split {r.split}: {r.rows} rows; {size}{subsets}")
        if r.problem_count:
            lines.append(f"  {r.problem_count} problem(s), first {len(r.problems)}:")
            lines += [f"  - {p}" for p in r.problems]
    total = sum(r.problem_count for r in reports)
    lines.append(f"{total} problem(s)" if total else "ok: no problems found")
    return "\n".join(lines)
