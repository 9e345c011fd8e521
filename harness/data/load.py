"""Load one split of a PJN_CHARTS-shaped data set from disk or the hub as a ``ChartSplit``.

A source is, in this order:

1. a directory written by ``DatasetDict.save_to_disk`` (has ``dataset_dict.json``), or by
   ``Dataset.save_to_disk`` when it is unambiguous which split it holds (its recorded split is the
   one asked for, or it records none and the directory is named after the split);
2. a directory of parquet files in the hub layout ``data/<split>-*.parquet`` (or ``<split>-*.parquet``);
3. otherwise a hub id, loaded with ``datasets.load_dataset`` and ``HF_TOKEN`` from the environment.

Before these, the local layouts of harness/data/local.py: an image folder with ``metadata.jsonl`` /
``metadata.csv``, or one JSONL/CSV file of rows.

A source that looks like a local path but does not exist fails here instead of becoming a hub lookup
that would take half a minute of retries to say something less clear.
"""

from __future__ import annotations

import bisect
import hashlib
import io
import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import datasets
from PIL import Image

from harness.data.cards import apply_format
from harness.data.example import ChartSplit, Example, SkippedRow, row_digest
from harness.data.layout import parquet_splits
from harness.data.local import local_layout, open_local
from harness.data.schema import (
    REQUIRED_COLUMNS,
    RowError,
    check_image,
    check_row,
    check_skipped,
    image_bytes,
    validate_features,
)
from harness.errors import HarnessError

__all__ = ["OpenedSplit", "open_split", "load_split", "split_from_dataset"]

_HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*(/[A-Za-z0-9][\w.-]*)?")
_BATCH_ROWS = 64


@dataclass(frozen=True)
class OpenedSplit:
    """A split as a ``datasets.Dataset`` plus how to name it and its rows in error messages."""

    dataset: datasets.Dataset
    where: str
    row_where: Callable[[int], str]


def load_split(source: str, split: str, limit: int | None = None, revision: str | None = None,
               data_format: dict | None = None) -> ChartSplit:
    """Load ``split`` of ``source`` (first ``limit`` rows if given), checked against the PJN_CHARTS schema.

    ``data_format``: a benchmark card's column mapping and label shape (harness/data/cards.py).
    """
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 0):
        raise HarnessError(f"{source}: limit must be a non-negative integer, got {limit!r}")
    opened = open_split(source, split, revision=revision, data_format=data_format)
    ds = apply_format(opened.dataset, data_format, opened.where)
    if limit is not None and limit < len(ds):
        ds = ds.select(range(limit), keep_in_memory=True)
    return split_from_dataset(ds, source=source, split=split, where=opened.where, row_where=opened.row_where)


def open_split(source: str, split: str, revision: str | None = None, data_format: dict | None = None) -> OpenedSplit:
    """Resolve ``source`` (see module docstring) and open ``split`` without decoding any image."""
    path = Path(os.path.expanduser(source))
    layout = local_layout(path)
    if layout is not None:  # image folder + metadata, or a JSONL/CSV file of rows (harness/data/local.py)
        if revision is not None:
            raise HarnessError(f"{source}: a revision ({revision!r}) only applies to hub ids, not local data")
        image_column = ((data_format or {}).get("columns") or {}).get("image", "image")
        return OpenedSplit(*open_local(source, layout, split, image_column))
    if path.is_dir():
        if revision is not None:
            raise HarnessError(f"{source}: a revision ({revision!r}) only applies to hub ids, not local directories")
        if (path / "dataset_dict.json").is_file():
            return _open_dataset_dict(source, path, split)
        if (path / "state.json").is_file() and (path / "dataset_info.json").is_file():
            return _open_single_dataset(source, path, split)
        if parquet_splits(path):
            return _open_parquet(source, path, split)
        raise HarnessError(
            f"{source}: not a data set directory (expected dataset_dict.json from save_to_disk, "
            f"parquet files data/<split>-*.parquet, "
            "or an image folder with metadata.jsonl / metadata.csv)"
        )
    if path.exists():
        raise HarnessError(f"{source}: is a file; give the directory that holds the data set")
    if _looks_like_path(source):
        raise HarnessError(f"{source}: no such directory")
    return _open_hub(source, split, revision)


def split_from_dataset(
    ds: datasets.Dataset,
    source: str,
    split: str,
    where: str | None = None,
    row_where: Callable[[int], str] | None = None,
) -> ChartSplit:
    """Check every row and index it (ids, image ids, fingerprint) while leaving images encoded.

    A row with a row-level problem (schema.py ``RowError``) is skipped and recorded in
    ``ChartSplit.skipped``; ``check_skipped`` fails the split when too many are (schema.py).
    """
    where = where or f"{source} (split '{split}')"
    row_where = row_where or (lambda i: f"{source}: split '{split}': row {i}")
    validate_features(ds.features, where)
    extra = [c for c in ds.column_names if c not in REQUIRED_COLUMNS]
    table_rows = ds.with_format("arrow")
    images = ds.select_columns(["image"]).with_format("arrow")
    examples: list[Example] = []
    digests: list[bytes] = []
    skipped: list[SkippedRow] = []
    problems: list[RowError] = []
    for start in range(0, len(ds), _BATCH_ROWS):
        batch = table_rows[start : start + _BATCH_ROWS]
        columns = {name: batch.column(name).to_pylist() for name in (*REQUIRED_COLUMNS, *extra)}
        for offset in range(batch.num_rows):
            index = start + offset
            here = row_where(index)
            cells = [columns[name][offset] for name in REQUIRED_COLUMNS]
            try:
                query, labels = check_row(columns["query"][offset], columns["label"][offset], here)
                data = image_bytes(columns["image"][offset], here)
                check_image(data, here)
            except RowError as exc:
                problems.append(exc)
                skipped.append(SkippedRow(f"{split}-{index}", here, exc.field, exc.reason, _raw_digest(index, cells)))
                continue
            meta = {
                name: columns[name][offset] for name in extra if isinstance(columns[name][offset], (str, int, float))
            }
            digests.append(row_digest(query, labels, data))
            examples.append(
                Example(
                    id=f"{split}-{index}",
                    query=query,
                    labels=labels,
                    image_id=hashlib.sha1(data).hexdigest()[:16],
                    meta=meta,
                    image_loader=_ImageLoader(images, index, here),
                )
            )
    check_skipped(where, len(ds), problems)
    return ChartSplit(source, split, examples, digests, skipped)


def _raw_digest(index: int, cells: list[Any]) -> bytes:
    """A skipped row's content, whatever its types (image bytes as they are), with its position."""
    h = hashlib.sha256(f"skipped row {index}".encode())
    for cell in cells:
        raw = cell.get("bytes") if isinstance(cell, dict) else cell
        part = bytes(raw) if isinstance(raw, (bytes, bytearray)) else repr(cell).encode("utf-8", "replace")
        h.update(len(part).to_bytes(8, "little"))
        h.update(part)
    return h.digest()


class _ImageLoader:
    """Reads one row's encoded image from the (memory-mapped) data set and decodes it on call.

    A class rather than a closure so examples survive pickling into data-loader worker processes.
    A decode failure (e.g. a body cut short behind an intact header) is a ``RowError``: the bench skips it.
    """

    def __init__(self, images: datasets.Dataset, index: int, where: str) -> None:
        self._images = images
        self._index = index
        self._where = where

    def __call__(self) -> Image.Image:
        value = self._images[self._index].column(0)[0].as_py()
        data = image_bytes(value, self._where)
        try:
            img = Image.open(io.BytesIO(data))
            img.load()
        except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
            raise RowError(self._where, "image", f"could not be decoded: {_first_line(exc)}") from exc
        return img


def _open_dataset_dict(source: str, path: Path, split: str) -> OpenedSplit:
    try:
        available = list(json.loads((path / "dataset_dict.json").read_text())["splits"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise HarnessError(f"{source}: unreadable dataset_dict.json: {_first_line(exc)}") from exc
    if split not in available:
        raise HarnessError(f"{source}: no split '{split}'; available: {', '.join(available) or 'none'}")
    ds = _load_from_disk(source, path / split)
    return OpenedSplit(ds, f"{source} (split '{split}')", lambda i: f"{source}: split '{split}': row {i}")


def _open_single_dataset(source: str, path: Path, split: str) -> OpenedSplit:
    ds = _load_from_disk(source, path)
    recorded = None if ds.split is None else str(ds.split)
    if recorded != split and not (recorded is None and path.name == split):
        held = f"split '{recorded}'" if recorded else "no recorded split"
        raise HarnessError(
            f"{source}: holds a single data set ({held}), so split '{split}' is ambiguous; "
            f"save a DatasetDict, or name the directory after its split"
        )
    return OpenedSplit(ds, f"{source} (split '{split}')", lambda i: f"{source}: split '{split}': row {i}")


def _load_from_disk(source: str, path: Path) -> datasets.Dataset:
    try:
        if json.loads((path / "state.json").read_text()).get("_data_files") == []:  # 0 rows: datasets cannot open it
            features = datasets.DatasetInfo.from_directory(str(path)).features
            return datasets.Dataset.from_dict({name: [] for name in features or {}}, features=features)
        return datasets.Dataset.load_from_disk(str(path))
    except Exception as exc:  # datasets raises several unrelated types for a damaged directory
        raise HarnessError(f"{source}: cannot read {path}: {type(exc).__name__}: {_first_line(exc)}") from exc


def _open_parquet(source: str, path: Path, split: str) -> OpenedSplit:
    splits = parquet_splits(path)
    if split not in splits:
        raise HarnessError(f"{source}: no split '{split}'; available: {', '.join(sorted(splits))}")
    files = splits[split]
    shown = [os.path.join(source, str(f.relative_to(path))) for f in files]
    try:
        import pyarrow.parquet as pq

        counts = [pq.read_metadata(f).num_rows for f in files]
        ds = datasets.load_dataset("parquet", data_files={split: [str(f) for f in files]}, split=split)
    except Exception as exc:  # pyarrow and datasets raise many types for a corrupt file
        raise HarnessError(
            f"{source}: cannot read parquet split '{split}': {type(exc).__name__}: {_first_line(exc)}"
        ) from exc
    starts = [sum(counts[:k]) for k in range(len(counts))]

    def row_where(i: int) -> str:
        k = bisect.bisect_right(starts, i) - 1
        return f"{shown[k]}: row {i - starts[k]}"

    pattern = os.path.join(source, str(files[0].parent.relative_to(path)), f"{split}-*.parquet")
    return OpenedSplit(ds, os.path.normpath(pattern), row_where)


def _open_hub(source: str, split: str, revision: str | None) -> OpenedSplit:
    token = os.environ.get("HF_TOKEN") or None
    try:
        ds = datasets.load_dataset(source, split=split, revision=revision, token=token)
    except Exception as exc:  # offline, gated, missing repo or split: all become one line
        message = _first_line(exc)
        if token:
            message = message.replace(token, "***")
        rev = f" at revision {revision!r}" if revision else ""
        raise HarnessError(
            f"{source}: cannot load split '{split}'{rev} from the hub: {type(exc).__name__}: {message}"
        ) from None
    if not isinstance(ds, datasets.Dataset):
        raise HarnessError(f"{source}: split '{split}' did not load as a Dataset (got {type(ds).__name__})")
    return OpenedSplit(ds, f"{source} (split '{split}')", lambda i: f"{source}: split '{split}': row {i}")


def _looks_like_path(source: str) -> bool:
    """True for things no hub id looks like, or relative paths whose first folder exists here."""
    if source.startswith((".", "/", "~")) or (os.altsep and os.altsep in source):
        return True
    if source.endswith((".parquet", ".arrow", ".json")) or not _HUB_ID.fullmatch(source):
        return True
    return os.sep in source and Path(source).parent.is_dir()


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
