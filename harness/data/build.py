"""Rebuild PJN_CHARTS from ChartQA, so the benchmark does not depend on one uploaded copy.

Recipe (as the original study published it): for each split, keep the human-written questions
(``human_or_machine == 0``), shuffle with ``seed`` (``datasets.Dataset.shuffle``), take the first N
rows, drop ``human_or_machine``, and save everything with ``DatasetDict.save_to_disk``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import datasets

from harness.data.load import open_split
from harness.data.outdir import check_out_dir, save_dataset_dict
from harness.data.schema import validate_features
from harness.errors import HarnessError

__all__ = ["PJN_SIZES", "build_pjn_charts"]

PJN_SIZES: dict[str, int] = {"train": 1200, "val": 500, "test": 500}
_HUMAN = 0


def build_pjn_charts(
    out_dir: str | Path,
    source: str = "HuggingFaceM4/ChartQA",
    seed: int = 42,
    sizes: Mapping[str, int] | None = None,
    revision: str | None = None,
) -> Path:
    """Write PJN_CHARTS (default sizes ``PJN_SIZES``) built from ``source`` (hub id or local copy)."""
    sizes = dict(PJN_SIZES if sizes is None else sizes)
    out = check_out_dir(out_dir)
    local = Path(source).expanduser()
    if local.exists() and out.resolve() == local.resolve():
        raise HarnessError(f"{out}: the output directory is the source; write the rebuilt set elsewhere")
    parts = {split: _select(source, split, n, seed, revision) for split, n in sizes.items()}
    return save_dataset_dict(datasets.DatasetDict(parts), out)


def _select(source: str, split: str, n: int, seed: int, revision: str | None) -> datasets.Dataset:
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise HarnessError(f"{source}: split '{split}': size must be a non-negative integer, got {n!r}")
    opened = open_split(source, split, revision=revision)
    ds = opened.dataset
    validate_features(ds.features, opened.where)
    if "human_or_machine" not in ds.column_names:
        raise HarnessError(f"{opened.where}: missing column 'human_or_machine' (the recipe keeps rows where it is 0)")
    # keep_in_memory: only index mappings are made, and nothing is written next to a local source.
    human = ds.filter(
        lambda flags: [flag == _HUMAN for flag in flags],
        input_columns="human_or_machine",
        batched=True,
        keep_in_memory=True,
    )
    if len(human) < n:
        raise HarnessError(
            f"{opened.where}: only {len(human)} human-written rows (human_or_machine == 0), {n} asked for"
        )
    chosen = human.shuffle(seed=seed, keep_in_memory=True).select(range(n), keep_in_memory=True)
    return chosen.remove_columns("human_or_machine")
