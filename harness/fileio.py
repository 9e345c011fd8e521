"""The one way the harness reads and writes its files: atomic JSON, append-and-fsync JSONL, one reader.

Every stage hands the next one files (spec.json, samples.jsonl, result.json, training.json), so these
rules hold everywhere: a reader never sees half a JSON file, a killed writer leaves at most a torn last
JSONL line (cut off on the next read), and any other bad line is an error naming file:line.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

from harness.errors import HarnessError

__all__ = ["append_jsonl", "read_json", "read_jsonl", "write_json_atomic", "write_text_atomic"]


def write_text_atomic(path: Path, text: str) -> None:
    """Temp file in the same folder, fsync, rename: readers see the old file or the new one, never half."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; results on a shared mount must stay readable
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json_atomic(path: Path, obj) -> None:
    write_text_atomic(path, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def read_json(path: Path) -> dict:
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise HarnessError(f"{path}: invalid JSON at line {exc.lineno} ({exc.msg})") from None
    except UnicodeDecodeError:
        raise HarnessError(f"{path}: not valid UTF-8") from None


def append_jsonl(path: Path, rows: Iterable[dict]) -> None:
    """Append whole lines and fsync: after a crash the file ends at a line boundary or in a torn last line."""
    with open(path, "a", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, sort_keys=True, default=str) + "\n")
        fh.flush()
        os.fsync(fh.fileno())


def read_jsonl(path: Path, *, repair: bool = False, key: str | None = None) -> list[dict]:
    """Rows of a JSONL file written by `append_jsonl`.

    A torn last line (no newline: the writer was killed mid-line) is dropped, and with `repair` cut off
    the file so the next append starts clean. A bad line anywhere else is an error naming file:line.
    With `key`, a row whose key repeats an earlier one is dropped (a resumed batch written twice).
    """
    path = Path(path)
    if not path.exists():
        return []
    data = path.read_bytes()
    lines = data.split(b"\n")
    torn = lines.pop()  # b"" when the file ends with a newline
    rows, seen, good_bytes = [], set(), 0
    for lineno, raw in enumerate(lines, start=1):
        good_bytes += len(raw) + 1
        if not raw.strip():
            continue
        try:
            row = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise HarnessError(f"{path}:{lineno}: invalid JSON line ({getattr(exc, 'msg', 'not UTF-8')})") from None
        if not isinstance(row, dict):
            raise HarnessError(f"{path}:{lineno}: expected a JSON object, got {type(row).__name__}")
        if key is not None:
            if row.get(key) in seen:
                continue
            seen.add(row.get(key))
        rows.append(row)
    if torn and repair:
        with open(path, "r+b") as fh:
            fh.truncate(good_bytes)
    return rows
