"""The PJN_CHARTS schema, checked up front so a bad data set fails in one readable line.

Columns: ``image`` (datasets ``Image``, a struct with ``bytes``/``path``, or raw binary), ``query``
(a non-empty string) and ``label`` (a list of at least one string; ``label[0]`` is the training
target, all of them are references). Extra columns are allowed and travel as ``Example.meta``.

Two kinds of problem: a structural one (a missing or mistyped column, an empty split) fails the whole
split in one line; a row-level one (``RowError``: an unusable image, an empty or non-string query, a
bad label) skips that row, recorded with its reason, as long as at most ``MAX_SKIPPED_SHARE`` of the
rows asked for are skipped (``check_skipped``); more than that fails in one line with the first reasons.
Loaders (load.py, and any other source of rows) call these functions rather than checking inline.
"""

from __future__ import annotations

import difflib
import io
import re
import warnings
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import datasets
import PIL.Image
from datasets import Features, Image, Value

from harness.errors import HarnessError

__all__ = ["MAX_SKIPPED_SHARE", "REQUIRED_COLUMNS", "RowError", "check_image", "check_row", "check_skipped",
           "image_bytes", "validate_features"]

# A split may lose at most this share of its rows to row-level problems; beyond it the data set is
# more likely broken than dirty, and a score over what is left would not stand for the split.
MAX_SKIPPED_SHARE = 0.10
SHOWN_REASONS = 3  # reasons quoted when a split fails for too many bad rows
# Our own bound (PIL's default warning limit, about 9459x9459): a library setting cannot lift it.
MAX_IMAGE_PIXELS = 89_478_485


class RowError(HarnessError):
    """A problem confined to one row: ``where`` names the source and row, ``field`` the column."""

    def __init__(self, where: str, field: str, reason: str) -> None:
        super().__init__(f"{where}: field '{field}' {reason}")
        self.where, self.field, self.reason = where, field, reason

REQUIRED_COLUMNS: tuple[str, ...] = ("image", "query", "label")
_STRING_DTYPES = {"string", "large_string"}
_BINARY_DTYPES = {"binary", "large_binary"}
# datasets >= 4 has List/LargeList (Sequence became a List factory); older versions have Sequence.
_LIST_TYPES: tuple[type, ...] = tuple(
    t for t in (getattr(datasets, n, None) for n in ("List", "LargeList", "Sequence")) if isinstance(t, type)
)


def validate_features(features_or_column_names: Features | Mapping[str, Any] | Iterable[str], where: str) -> None:
    """Fail with one line naming ``where`` and the field when the required columns are absent or mistyped.

    Given only column names (an iterable of str), only presence is checked.
    """
    if isinstance(features_or_column_names, Mapping):
        features: Mapping[str, Any] | None = features_or_column_names
        names = list(features_or_column_names)
    else:
        features = None
        names = list(features_or_column_names)
    missing = [c for c in REQUIRED_COLUMNS if c not in names]
    if missing:
        quoted = ", ".join(repr(c) for c in missing)
        noun = "column" if len(missing) == 1 else "columns"
        extra = [n for n in names if n not in REQUIRED_COLUMNS]
        hints = [f"column '{close[0]}': did you mean {c!r}?" for c in missing
                 for close in [difflib.get_close_matches(c, extra, n=1, cutoff=0.6)] if close]
        hint = "; " + "; ".join(hints) if hints else ""
        raise HarnessError(f"{where}: missing {noun} {quoted} (columns present: {', '.join(names) or 'none'}){hint}")
    if features is None:
        return
    if not _is_image_feature(features["image"]):
        raise HarnessError(
            f"{where}: field 'image' must be an image (datasets Image or a struct with bytes/path), "
            f"got {_one_line(features['image'])}"
        )
    if not _is_string_feature(features["query"]):
        raise HarnessError(f"{where}: field 'query' must be a string, got {_one_line(features['query'])}")
    if not _is_string_list_feature(features["label"]):
        raise HarnessError(f"{where}: field 'label' must be a list of strings, got {_one_line(features['label'])}")


def check_row(query: Any, label: Any, where: str) -> tuple[str, tuple[str, ...]]:
    """Check one row's ``query`` and ``label``; ``where`` already names the source and row.

    Returns the query and the labels as a tuple, so callers cannot skip the check; raises ``RowError``.
    """
    if not isinstance(query, str):
        raise RowError(where, "query", f"must be a string, got {_type_name(query)}")
    if not query.strip():
        raise RowError(where, "query", "is empty")
    if not isinstance(label, (list, tuple)):
        raise RowError(where, "label", f"must be a list of strings, got {_type_name(label)}")
    if not label:
        raise RowError(where, "label", "is an empty list (need at least one reference answer)")
    for i, item in enumerate(label):
        if not isinstance(item, str):
            raise RowError(where, f"label[{i}]", f"must be a string, got {_type_name(item)}")
    return query, tuple(label)


def image_bytes(value: Any, where: str) -> bytes:
    """Encoded bytes of an image cell: a {bytes, path} struct, raw bytes, or a file path (``RowError`` if none)."""
    from pathlib import Path

    path = None
    if isinstance(value, dict):
        if value.get("bytes"):
            return value["bytes"]
        path = value.get("path")
    elif isinstance(value, (bytes, bytearray)):
        if value:
            return bytes(value)
    elif isinstance(value, str):
        path = value
    elif isinstance(value, PIL.Image.Image):
        raise RowError(where, "image", "is a decoded PIL image; store encoded bytes (datasets Image)")
    if path:
        try:
            return Path(path).read_bytes()
        except OSError as exc:
            raise RowError(where, "image", f"refers to {path!r}, which cannot be read: {exc.strerror}") from exc
    raise RowError(where, "image", "is empty (0 bytes)")


def check_image(data: bytes, where: str) -> None:
    """Header and structure of encoded image bytes, without decoding pixels (``RowError`` when unusable).

    Refuses what PIL cannot open, a 0-pixel image, one over ``MAX_IMAGE_PIXELS`` (a
    decompression bomb: its header is read, its pixels never), and a PNG whose chunks are cut short
    (``verify`` walks the chunks and their checksums; other formats are found truncated only on decode).
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", PIL.Image.DecompressionBombWarning)
            with PIL.Image.open(io.BytesIO(data)) as img:
                width, height = img.size
                limit = MAX_IMAGE_PIXELS
                if not width or not height:
                    raise RowError(where, "image", f"has no pixels ({width}x{height})")
                if limit and width * height > limit:
                    raise RowError(where, "image", f"is {width}x{height} pixels, over the {limit} allowed "
                                                   "(a decompression bomb?); not decoded")
                if img.format == "PNG":
                    img.verify()
    except RowError:
        raise
    except (PIL.Image.DecompressionBombError, PIL.Image.DecompressionBombWarning) as exc:
        reason = f"is too large to decode safely (a decompression bomb?): {_first_line(exc)}"
        raise RowError(where, "image", reason) from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:  # UnidentifiedImageError is an OSError
        raise RowError(where, "image", f"is not a decodable image: {_first_line(exc)}") from None


def check_skipped(where: str, asked: int, skipped: Sequence[RowError]) -> None:
    """Fail in one line when a split has no rows, no usable row, or more than ``MAX_SKIPPED_SHARE`` skipped."""
    if asked == 0:
        raise HarnessError(f"{where}: the split has no rows")
    if not skipped or (len(skipped) < asked and len(skipped) <= MAX_SKIPPED_SHARE * asked):
        return
    shown = "; ".join(_shorter(str(e), str(skipped[0].where)) if k else str(e)
                      for k, e in enumerate(skipped[:SHOWN_REASONS]))
    more = f"; and {len(skipped) - SHOWN_REASONS} more" if len(skipped) > SHOWN_REASONS else ""
    verdict = "no row is usable" if len(skipped) == asked else (
        f"more than {MAX_SKIPPED_SHARE:.0%} may be skipped")
    raise HarnessError(f"{where}: {len(skipped)} of {asked} rows are unusable ({verdict}): {shown}{more}")


def _is_image_feature(feature: Any) -> bool:
    if isinstance(feature, Image):
        return True
    if isinstance(feature, Mapping):
        return bool(feature) and set(feature) <= {"bytes", "path"}
    return isinstance(feature, Value) and feature.dtype in _BINARY_DTYPES


def _is_string_feature(feature: Any) -> bool:
    return isinstance(feature, Value) and feature.dtype in _STRING_DTYPES


def _is_string_list_feature(feature: Any) -> bool:
    if isinstance(feature, _LIST_TYPES):
        return _is_string_feature(feature.feature)
    if isinstance(feature, list) and len(feature) == 1:
        return _is_string_feature(feature[0])
    return False


def _type_name(value: Any) -> str:
    return "None" if value is None else type(value).__name__


def _shorter(text: str, first_where: str) -> str:
    """After the first reason, drop the source its row shares with the first one ("...: row 7: ...")."""
    source = first_where.rpartition("row ")[0]
    return text[len(source):] if source and text.startswith(source) else text


def _first_line(exc: BaseException) -> str:
    text = re.sub(r" <[\w.]+ object at 0x[0-9a-f]+>", "", str(exc).strip())  # PIL names the BytesIO it read
    return text.splitlines()[0] if text else type(exc).__name__


def _one_line(obj: Any) -> str:
    return " ".join(repr(obj).split())
