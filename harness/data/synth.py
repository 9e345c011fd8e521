"""Write a synthetic PJN_CHARTS-shaped data set whose answers are exact by construction.

Why: the real set needs the hub, and a model can only be shown to learn on data whose labels are
certainly right. Each chart (bar, hbar, line, pie, grouped_bar) prints its values as data labels and
gets 2-3 questions (value, largest, smallest, difference, sum, average, count_above, color), so
``Example.image_id`` clusters exist as in ChartQA. Label format: see ``harness.data.synth_plan``.

Determinism: the same ``seed`` and ``sizes`` give the same rows and byte-identical PNGs (on one
machine; another FreeType build may move a pixel). Each split draws from its own random stream
(``seed`` + split name), so resizing ``train`` does not change ``test``, and no chart appears in two
splits.
"""

from __future__ import annotations

import multiprocessing
import re
import warnings
from collections.abc import Mapping
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

import datasets

from harness.data.cards import to_card_format
from harness.data.outdir import check_out_dir, save_dataset_dict
from harness.data.synth_plan import (
    CHART_TYPES,
    COLORS,
    COUNTRIES,
    FRUITS,
    MONTHS,
    QUESTION_TYPES,
    SERIES,
    TITLES,
    SynthChart,
    format_tenths,
    plan_split,
)
from harness.data.synth_render import pin_style_for_process, pinned_style, render_png
from harness.errors import HarnessError

__all__ = [
    "DEFAULT_SIZES",
    "SYNTH_FEATURES",
    "SYNTH_VERSION",
    "SYNTH_VOCAB_TEXT",
    "CHART_TYPES",
    "QUESTION_TYPES",
    "write_synthetic",
    "synthetic_dataset",
]

SYNTH_VERSION = 1
DEFAULT_SIZES: dict[str, int] = {"train": 1200, "val": 500, "test": 500}
SYNTH_FEATURES = datasets.Features(
    {
        "image": datasets.Image(),
        "query": datasets.Value("string"),
        "label": datasets.Sequence(datasets.Value("string")),  # List on datasets >= 4
        "question_type": datasets.Value("string"),
        "chart_type": datasets.Value("string"),
    }
)
_SPLIT_NAME = re.compile(r"\w+(\.\w+)*")


def write_synthetic(
    out_dir: str | Path, sizes: Mapping[str, int] | None = None, seed: int = 0, *, workers: int = 1,
    data_format: dict | None = None,
) -> Path:
    """Write a ``DatasetDict.save_to_disk`` directory at ``out_dir`` (default sizes: ``DEFAULT_SIZES``).

    ``data_format`` (a benchmark card's, harness/data/cards.py): write a stand-in in that card's format,
    its column names, label shape and subset column (values alternating chart by chart).

    ``workers > 1`` draws charts in that many spawned processes: same bytes, but each process takes
    1-2 s to start, so it only pays off for the full default sizes on otherwise idle cores.
    """
    sizes = dict(DEFAULT_SIZES if sizes is None else sizes)
    out = check_out_dir(out_dir)
    dsd = synthetic_dataset(sizes, seed, workers=workers)
    if data_format:
        dsd = datasets.DatasetDict({split: to_card_format(ds, data_format) for split, ds in dsd.items()})
    return save_dataset_dict(dsd, out)


def synthetic_dataset(sizes: Mapping[str, int], seed: int = 0, *, workers: int = 1) -> datasets.DatasetDict:
    """The synthetic splits in memory (what ``write_synthetic`` saves)."""
    for split, n in sizes.items():
        if not isinstance(split, str) or not _SPLIT_NAME.fullmatch(split):
            raise HarnessError(f"synthetic data: split name {split!r} must be letters, digits or '_'")
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise HarnessError(f"synthetic data: split '{split}': size must be a non-negative integer, got {n!r}")
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise HarnessError(f"synthetic data: workers must be a positive integer, got {workers!r}")
    seen: set[tuple] = set()
    plans = {split: plan_split(split, n, seed, seen) for split, n in sizes.items()}
    pngs = _render_all([chart for charts in plans.values() for chart in charts], workers)
    out = {}
    for split, charts in plans.items():
        info = datasets.DatasetInfo(
            description=f"harness synthetic charts v{SYNTH_VERSION}, seed {seed}, split {split}",
            features=SYNTH_FEATURES,
        )
        mine, pngs = pngs[: len(charts)], pngs[len(charts) :]
        out[split] = datasets.Dataset.from_dict(_rows(charts, mine), features=SYNTH_FEATURES, info=info, split=split)
    return datasets.DatasetDict(out)


def _render_all(charts: list[SynthChart], workers: int) -> list[bytes]:
    if workers == 1 or len(charts) < 2 * workers:
        with pinned_style():
            return [render_png(chart) for chart in charts]
    # spawn, not fork: the caller may hold threads (torch, arrow) that a forked child would inherit.
    context = multiprocessing.get_context("spawn")
    chunk = max(1, len(charts) // (workers * 4))
    try:
        with ProcessPoolExecutor(workers, mp_context=context, initializer=pin_style_for_process) as pool:
            return list(pool.map(render_png, charts, chunksize=chunk))
    except BrokenProcessPool:
        # e.g. a main module spawn cannot re-import (python - <<EOF, some notebooks): same bytes, slower.
        warnings.warn(
            "synthetic charts: worker processes failed to start; drawing in this process", RuntimeWarning, stacklevel=3
        )
        return _render_all(charts, 1)


def _rows(charts: list[SynthChart], pngs: list[bytes]) -> dict[str, list]:
    rows: dict[str, list] = {name: [] for name in SYNTH_FEATURES}
    for chart, data in zip(charts, pngs):
        png = {"bytes": data, "path": None}
        for q in chart.questions:
            rows["image"].append(png)
            rows["query"].append(q.query)
            rows["label"].append([q.answer])
            rows["question_type"].append(q.kind)
            rows["chart_type"].append(chart.chart_type)
    return rows


def _vocab_text() -> list[str]:
    """Sentences covering every word and number format the generator can print or ask about."""
    lines = [
        " ".join(FRUITS),
        " ".join(COUNTRIES),
        " ".join(MONTHS),
        " ".join(SERIES),
        " ".join(COLORS),
        " ".join(CHART_TYPES),
        *(title for titles in TITLES.values() for title in titles),
        " ".join(str(n) for n in range(0, 201)),
        # decimals: values and their sums reach 40.0, averages of whole values reach 95.0
        *(" ".join(format_tenths(t) for t in range(start, start + 100) if t % 10) for start in range(0, 1000, 100)),
        " ".join(f"{n}%" for n in range(0, 101)),
    ]
    for chart in plan_split("vocab", 600, seed=0):
        for q in chart.questions:
            lines.append(f"{q.query} {q.answer}")
    return lines


SYNTH_VOCAB_TEXT: list[str] = _vocab_text()
