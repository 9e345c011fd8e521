"""The one way the harness reads and writes its files: atomic JSON, append-and-fsync JSONL, one reader.

Every stage hands the next one files (spec.json, samples.jsonl, result.json, training.json), so these
rules hold everywhere: a reader never sees half a JSON file, a killed writer leaves at most a torn last
JSONL line (cut off on the next read), and any other bad line is an error naming file:line.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from harness import faults
from harness.errors import HarnessError

__all__ = ["append_jsonl", "atomic_dir", "atomic_file", "disk_full", "no_space_is_one_line", "read_json", "read_jsonl",
           "write_bytes_atomic", "write_json_atomic", "write_text_atomic"]


def disk_full(path) -> HarnessError:
    """The one line a full disk gets: the writers below leave the previous file as it was."""
    return HarnessError(f"disk full writing {path}: previous state intact; free space and rerun to resume")


@contextmanager
def no_space_is_one_line(path):
    """Turn ENOSPC (and EDQUOT, a full quota) raised inside the block into `disk_full(path)`.

    Writers that wrap the OS error (torch.save's zip writer, safetensors) may raise another type
    whose message carries strerror: matched by text as well (unverified against a real full disk).
    """
    try:
        yield
    except Exception as exc:
        if _no_space(exc):
            raise disk_full(path) from None
        raise


_NO_SPACE = (os.strerror(errno.ENOSPC), os.strerror(errno.EDQUOT))


def _no_space(exc: BaseException | None) -> bool:
    while exc is not None:
        if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        if any(text in str(exc) for text in _NO_SPACE):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


@contextmanager
def atomic_file(path: Path, fault: str | None = None) -> Iterator[BinaryIO]:
    """A binary handle on a temp file beside `path`; on exit fsync and rename over `path`.

    Readers see the old file or the new one, never half; a failure (a full disk) removes the temp file
    and leaves the old one. `fault` names the point (harness/faults.py) reached with the temp file
    half written: `{fault}.mid`.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with no_space_is_one_line(path), os.fdopen(fd, "wb") as fh:
            yield fh
            if fault:
                fh.flush()
                faults.point(f"{fault}.mid", path)
            fh.flush()
            os.fsync(fh.fileno())
            os.chmod(tmp, 0o644)  # mkstemp makes 0600; results on a shared mount must stay readable
            os.replace(tmp, path)
        _fsync_dir(path.parent)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@contextmanager
def atomic_dir(path: Path, fault: str | None = None) -> Iterator[Path]:
    """A temp folder beside `path` to fill (save_pretrained); on exit fsync its files and swap it in.

    The old folder is removed only once the new one is complete on disk, so a kill leaves the old
    folder, the new one or both (a rerun redoes it); the record written after it (training.json) is
    what says it is finished. `{fault}.mid` is reached with the temp folder written, before the swap.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    try:
        with no_space_is_one_line(path):
            yield tmp
            for file in sorted(p for p in tmp.rglob("*") if p.is_file()):
                with open(file, "rb") as fh:
                    os.fsync(fh.fileno())
            if fault:
                faults.point(f"{fault}.mid", path)
            if path.exists():
                shutil.rmtree(path)
            os.replace(tmp, path)
        _fsync_dir(path.parent)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _fsync_dir(folder: Path) -> None:
    """Make a rename durable: fsync the folder that holds the new name."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_bytes_atomic(path: Path, data: bytes, fault: str | None = None) -> None:
    with atomic_file(path, fault) as fh:
        fh.write(data)


def write_text_atomic(path: Path, text: str, fault: str | None = None) -> None:
    """Temp file in the same folder, fsync, rename: readers see the old file or the new one, never half."""
    data = text.encode("utf-8")
    with atomic_file(path) as fh:
        fh.write(data[: len(data) // 2])
        if fault:  # a kill here leaves a half-written temp file beside the untouched old one
            fh.flush()
            faults.point(f"{fault}.mid", path)
        fh.write(data[len(data) // 2 :])


def write_json_atomic(path: Path, obj, fault: str | None = None) -> None:
    write_text_atomic(path, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n", fault)


def read_json(path: Path) -> dict:
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise HarnessError(f"{path}: invalid JSON at line {exc.lineno} ({exc.msg})") from None
    except UnicodeDecodeError:
        raise HarnessError(f"{path}: not valid UTF-8") from None


def append_jsonl(path: Path, rows: Iterable[dict], fault: str | None = None) -> None:
    """Append whole lines and fsync: after a crash the file ends at a line boundary or in a torn last line.

    A failed write (a full disk) cuts the file back to where it was, so the stored rows stay intact.
    `{fault}.mid` is reached with half of the new text written (a kill there leaves a torn line).
    """
    data = "".join(json.dumps(row, sort_keys=True, default=str) + "\n" for row in rows).encode("utf-8")
    # Unbuffered, so nothing is left in a buffer to land after the cut below.
    with no_space_is_one_line(path), open(path, "ab", buffering=0) as fh:
        start = fh.seek(0, os.SEEK_END)
        try:
            _write_all(fh, data[: len(data) // 2])
            if fault:
                faults.point(f"{fault}.mid", path)
            _write_all(fh, data[len(data) // 2 :])
            os.fsync(fh.fileno())
        except OSError:
            os.ftruncate(fh.fileno(), start)
            raise


def _write_all(fh, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[fh.write(view):]


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
