"""Which splits a local data set folder holds, from its layout alone (no rows read, no `datasets` import).

Shared by the loader (harness/data/load.py) and the planner, which checks a --split before any work.
"""

from __future__ import annotations

import json
from pathlib import Path

__all__ = ["local_splits", "parquet_splits"]


def parquet_splits(path: Path) -> dict[str, list[Path]]:
    """Split name -> parquet files, from ``data/<split>-*.parquet``, else ``<split>-*.parquet``."""
    for folder in (Path(path) / "data", Path(path)):
        found: dict[str, list[Path]] = {}
        for file in sorted(folder.glob("*-*.parquet")):
            found.setdefault(file.name.split("-", 1)[0], []).append(file)
        if found:
            return found
    return {}


def local_splits(path: Path) -> list[str] | None:
    """Split names of a save_to_disk DatasetDict or a parquet folder; None when the layout does not say."""
    listing = Path(path) / "dataset_dict.json"
    if listing.is_file():
        try:
            return [str(s) for s in json.loads(listing.read_text())["splits"]]
        except (OSError, ValueError, KeyError, TypeError):
            return None  # the loader names what is wrong with it
    return sorted(parquet_splits(path)) or None
