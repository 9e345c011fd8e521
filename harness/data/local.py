"""The local layouts people keep chart-QA data in, opened as a ``datasets.Dataset`` for the schema check.

1. an image folder with ``metadata.jsonl`` or ``metadata.csv`` (the ``datasets`` ImageFolder
   convention: a ``file_name`` column naming each row's image, relative to the metadata file, plus
   any other columns); splits are subfolders (``train/metadata.csv``, ``test/metadata.csv``), or the
   folder itself is the split asked for;
2. a ``.jsonl`` or ``.csv`` file of rows whose image column (``file_name``, or the card's image
   column) holds paths relative to the file; the file is the split asked for.

Images stay on disk (the Image column holds paths) until a row is used. Column names are the data's
own: a benchmark card's ``columns:`` maps them (harness/data/cards.py). Layout detection reads no rows
and imports no ``datasets``, so the planner uses it to check a --split before any work.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from harness.errors import HarnessError

__all__ = ["METADATA_FILES", "ROW_FILE_SUFFIXES", "LocalLayout", "local_layout", "open_local"]

METADATA_FILES = ("metadata.jsonl", "metadata.csv")
ROW_FILE_SUFFIXES = (".jsonl", ".csv")


@dataclass(frozen=True)
class LocalLayout:
    """Where a local data set's rows are: one file per split, or one file that is any asked split."""

    files: dict[str, Path]  # split -> rows file; {"*": file} when the file is whichever split is asked
    kind: str  # "image folder" | "rows file"

    @property
    def splits(self) -> list[str] | None:
        return None if "*" in self.files else list(self.files)

    def file_for(self, split: str) -> Path | None:
        return self.files.get("*") or self.files.get(split)


def _metadata(folder: Path) -> Path | None:
    return next((folder / m for m in METADATA_FILES if (folder / m).is_file()), None)


def local_layout(path: Path) -> LocalLayout | None:
    """The layout of ``path`` if it is one of the module's layouts, else None (not its business)."""
    path = Path(path)
    if path.is_file():
        return LocalLayout({"*": path}, "rows file") if path.suffix.lower() in ROW_FILE_SUFFIXES else None
    if not path.is_dir() or (path / "dataset_dict.json").is_file() or (path / "state.json").is_file():
        return None  # save_to_disk folders are load.py's
    top = _metadata(path)
    if top is not None:
        return LocalLayout({"*": top}, "image folder")
    subs = {d.name: m for d in sorted(path.iterdir()) if d.is_dir() and (m := _metadata(d)) is not None}
    return LocalLayout(subs, "image folder") if subs else None


def open_local(source: str, layout: LocalLayout, split: str, image_column: str = "image"):
    """(Dataset, where, row_where) for ``split``; ``image_column`` is the card's name for the image column."""
    import datasets

    file = layout.file_for(split)
    if file is None:
        raise HarnessError(f"{source}: no split '{split}'; available: {', '.join(layout.splits or [])}")
    rows, lines = _read_rows(file)
    if not rows:
        raise HarnessError(f"{file}: no rows")
    names = list(dict.fromkeys(k for row in rows for k in row))
    column = image_column if image_column in names else "file_name" if "file_name" in names else None
    if column is None:
        raise HarnessError(f"{file}: no 'file_name' column (or '{image_column}') naming each row's image "
                           f"(columns: {', '.join(names)})")
    data = {name: [row.get(name) for row in rows] for name in names if name != column}
    data[image_column] = [_image_path(file, row.get(column)) for row in rows]
    try:
        ds = datasets.Dataset.from_dict(data)
        ds = ds.cast_column(image_column, datasets.Image())
    except Exception as exc:  # arrow cannot type a column (mixed types across rows): one line
        raise HarnessError(f"{file}: cannot make a table of its rows: {type(exc).__name__}: "
                           f"{str(exc).strip().splitlines()[0] if str(exc).strip() else ''}") from None
    where = f"{file} (split '{split}')"
    row_where: Callable[[int], str] = lambda i: f"{file}: line {lines[i]}"  # noqa: E731
    return ds, where, row_where


def _image_path(file: Path, value) -> str | None:
    if not isinstance(value, str) or not value.strip():
        return None  # the schema check names the row ("field 'image' is empty")
    path = Path(value).expanduser()
    return str(path if path.is_absolute() else (file.parent / path))


def _read_rows(file: Path) -> tuple[list[dict], list[int]]:
    """The rows of a JSONL or CSV file and the line each starts on (for error messages)."""
    try:
        text = file.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise HarnessError(f"{file}: cannot be read: {exc}") from None
    rows, lines = [], []
    if file.suffix.lower() == ".csv":
        reader = csv.DictReader(text.splitlines())
        if not reader.fieldnames:
            raise HarnessError(f"{file}: no header row")
        for row in reader:
            if None in row:
                raise HarnessError(f"{file}: line {reader.line_num}: more fields than the header has")
            rows.append(row)
            lines.append(reader.line_num)
        return rows, lines
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError as exc:
            raise HarnessError(f"{file}: line {number}: not valid JSON ({exc})") from None
        if not isinstance(row, dict):
            raise HarnessError(f"{file}: line {number}: expected a JSON object, got {type(row).__name__}")
        rows.append(row)
        lines.append(number)
    return rows, lines
