"""Where a generated data set may be written: never over something that is not a data set."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import datasets

from harness.errors import HarnessError

__all__ = ["check_out_dir", "save_dataset_dict"]


def check_out_dir(out_dir: str | Path) -> Path:
    """Return ``out_dir`` expanded; fail if it is a file or a non-empty directory without a data set.

    An earlier ``save_to_disk`` output (``dataset_dict.json`` present) may be replaced, so re-running
    a build is fine, but a typo cannot clobber an unrelated folder.
    """
    out = Path(out_dir).expanduser()
    if out.exists() and not out.is_dir():
        raise HarnessError(f"{out}: exists and is not a directory")
    if out.is_dir() and any(out.iterdir()) and not (out / "dataset_dict.json").is_file():
        raise HarnessError(f"{out}: directory is not empty and holds no data set; choose another output path")
    return out


def save_dataset_dict(splits: datasets.DatasetDict, out: Path) -> Path:
    """Save ``splits`` at ``out``, first removing the split folders an earlier save listed there,
    so a replaced data set leaves no stale split behind."""
    check_out_dir(out)
    listing = out / "dataset_dict.json"
    if listing.is_file():
        try:
            old = json.loads(listing.read_text())["splits"]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise HarnessError(f"{out}: unreadable dataset_dict.json, not replacing it: {exc}") from exc
        for name in old:
            if isinstance(name, str) and name and "/" not in name and name not in (".", ".."):
                shutil.rmtree(out / name, ignore_errors=True)
        listing.unlink()
    splits.save_to_disk(str(out))
    return out
