"""The PJN_CHARTS schema, checked up front so a bad data set fails in one readable line.

Columns: ``image`` (datasets ``Image``, a struct with ``bytes``/``path``, or raw binary), ``query``
(a non-empty string) and ``label`` (a list of at least one string; ``label[0]`` is the training
target, all of them are references). Extra columns are allowed and travel as ``Example.meta``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import datasets
from datasets import Features, Image, Value

from harness.errors import HarnessError

__all__ = ["REQUIRED_COLUMNS", "validate_features", "check_row"]

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
        raise HarnessError(f"{where}: missing {noun} {quoted} (columns present: {', '.join(names) or 'none'})")
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

    Returns the query and the labels as a tuple, so callers cannot skip the check.
    """
    if not isinstance(query, str):
        raise HarnessError(f"{where}: field 'query' must be a string, got {_type_name(query)}")
    if not query.strip():
        raise HarnessError(f"{where}: field 'query' is empty")
    if not isinstance(label, (list, tuple)):
        raise HarnessError(f"{where}: field 'label' must be a list of strings, got {_type_name(label)}")
    if not label:
        raise HarnessError(f"{where}: field 'label' is an empty list (need at least one reference answer)")
    for i, item in enumerate(label):
        if not isinstance(item, str):
            raise HarnessError(f"{where}: field 'label[{i}]' must be a string, got {_type_name(item)}")
    return query, tuple(label)


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


def _one_line(obj: Any) -> str:
    return " ".join(repr(obj).split())
