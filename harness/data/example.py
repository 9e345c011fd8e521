"""One chart question (``Example``) and an ordered, fingerprinted split of them (``ChartSplit``).

Everything but the image is held in memory; the image is decoded only when ``Example.image`` is
read, so a split of large RGBA charts costs a few kilobytes per row until it is used.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, overload

from PIL import Image

from harness.data.images import to_rgb

__all__ = ["Example", "ChartSplit", "SkippedRow", "row_digest"]


@dataclass(frozen=True)
class Example:
    """A question about one chart with every reference answer.

    ``answer`` (``labels[0]``) is the training target; scoring should accept any of ``labels``.
    Training on ``str(labels)`` taught an earlier model to answer ``['93.2']``, hence the property.
    """

    id: str
    query: str
    labels: tuple[str, ...]
    image_id: str
    meta: dict[str, Any] = field(hash=False)
    image_loader: Callable[[], Image.Image] = field(compare=False, repr=False)

    @property
    def image(self) -> Image.Image:
        """The chart, decoded now (not cached) and converted to RGB."""
        return to_rgb(self.image_loader())

    @property
    def answer(self) -> str:
        """The training target: the first reference, as plain text."""
        return self.labels[0]


def row_digest(query: str, labels: Sequence[str], image_bytes: bytes) -> bytes:
    """sha256 of one row's content, length-prefixed so field boundaries cannot shift."""
    h = hashlib.sha256()
    h.update(len(labels).to_bytes(8, "little"))
    for part in (query.encode("utf-8"), *(label.encode("utf-8") for label in labels), image_bytes):
        h.update(len(part).to_bytes(8, "little"))
        h.update(part)
    return h.digest()


@dataclass(frozen=True)
class SkippedRow:
    """A row left out for a row-level problem (data/schema.py ``RowError``): recorded, never dropped silently.

    ``digest`` covers the row's raw content, so the split's fingerprint still covers every row asked for.
    """

    id: str
    where: str
    field: str
    reason: str
    digest: bytes = field(default=b"", repr=False)

    def __str__(self) -> str:
        return f"{self.where}: field '{self.field}' {self.reason}"

    def record(self) -> dict:
        """What a result and training.json keep: {id, where, field, reason}."""
        return {"id": self.id, "where": self.where, "field": self.field, "reason": self.reason}


class ChartSplit(Sequence[Example]):
    """The selected rows of one split, in order.

    ``fingerprint`` is the sha256 hex of the concatenated per-row digests (``row_digest`` over query,
    labels and encoded image bytes), so it depends only on the data and its order: the same rows
    saved with ``save_to_disk`` or as parquet give the same fingerprint, and any edit changes it.

    ``skipped`` are the rows asked for but left out (``SkippedRow``); their digests are hashed after the
    examples', so a set with a skipped row never shares a fingerprint with the same set without it.
    ``asked_rows`` counts both. A slice holds its examples only.
    """

    def __init__(self, source: str, split: str, examples: Sequence[Example], digests: Sequence[bytes],
                 skipped: Sequence[SkippedRow] = ()) -> None:
        if len(examples) != len(digests):
            raise ValueError("examples and digests must have the same length")
        self.source = source
        self.split = split
        self._examples = tuple(examples)
        self._digests = tuple(digests)
        self.skipped = tuple(skipped)
        self.asked_rows = len(self._examples) + len(self.skipped)
        self.fingerprint = hashlib.sha256(b"".join((*self._digests, *(s.digest for s in self.skipped)))).hexdigest()

    def __len__(self) -> int:
        return len(self._examples)

    @overload
    def __getitem__(self, index: int) -> Example: ...

    @overload
    def __getitem__(self, index: slice) -> ChartSplit: ...

    def __getitem__(self, index: int | slice) -> Example | ChartSplit:
        if isinstance(index, slice):
            return ChartSplit(self.source, self.split, self._examples[index], self._digests[index])
        return self._examples[index]

    def __iter__(self) -> Iterator[Example]:
        return iter(self._examples)

    def __repr__(self) -> str:
        return (
            f"ChartSplit(source={self.source!r}, split={self.split!r}, rows={len(self)}, "
            f"skipped={len(self.skipped)}, fingerprint={self.fingerprint[:12]}...)"
        )
