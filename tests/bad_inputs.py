"""Builders of the bad-input corpus (tests/unit/test_bad_inputs.py): a tiny good data set, damaged in one way.

`good_rows` is a small PJN_CHARTS-shaped split; each `damage_*` returns it with one thing broken, and
`save` writes a DatasetDict with `save_to_disk`, the layout users hand to `--dataset`.
"""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import datasets
from datasets import Features, Image, Value
from PIL import Image as PILImage

FEATURES = Features({"image": Image(), "query": Value("string"), "label": datasets.Sequence(Value("string"))})


def png(i: int = 0, size=(48, 32)) -> bytes:
    img = PILImage.effect_noise(size, 40 + i).convert("RGB")
    out = io.BytesIO()
    img.save(out, format="PNG")
    return out.getvalue()


def jpeg(i: int = 0, size=(64, 64)) -> bytes:
    out = io.BytesIO()
    PILImage.effect_noise(size, 40 + i).convert("RGB").save(out, format="JPEG")
    return out.getvalue()


def bomb_png(width: int = 100_000, height: int = 100_000) -> bytes:
    """A valid PNG signature and header claiming width x height pixels, with a few bytes of data: never decode it."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\x00" * 64))
            + chunk(b"IEND", b""))


def good_rows(n: int = 20) -> dict:
    return {"image": [{"bytes": png(i), "path": None} for i in range(n)],
            "query": [f"What is the value of bar {i}?" for i in range(n)],
            "label": [[str(i)] for i in range(n)]}


def save(folder: Path, rows: dict, features: Features | None = FEATURES, split: str = "test") -> Path:
    ds = datasets.Dataset.from_dict(rows, features=features)
    datasets.DatasetDict({split: ds}).save_to_disk(str(folder))
    return folder


def with_images(rows: dict, images: list[bytes], at=None) -> dict:
    """`rows` with the image of each row in `at` (default: all) replaced by the given bytes (cycled)."""
    at = range(len(rows["image"])) if at is None else at
    out = {**rows, "image": list(rows["image"])}
    for k, i in enumerate(at):
        out["image"][i] = {"bytes": images[k % len(images)], "path": None}
    return out


def with_column(rows: dict, column: str, values: list, at=None) -> dict:
    at = range(len(rows[column])) if at is None else at
    out = {**rows, column: list(rows[column])}
    for k, i in enumerate(at):
        out[column][i] = values[k % len(values)]
    return out
