"""A benchmark card's data format: column mapping, label shape and the column that groups sub-scores.

The planner puts `data_format(bench)` into the spec (None for a card in the canonical PJN_CHARTS
shape, so those specs keep their ids); the worker applies it to the opened split before the schema
check (`apply_format`), so errors name the card's own column names. The synthetic generator writes a
stand-in in the card's format (`to_card_format`), so a card's mapping is exercised offline too.
"""

from __future__ import annotations

from typing import Any

from harness.errors import HarnessError

__all__ = ["CANONICAL", "LABEL_SHAPES", "apply_format", "check_card_format", "data_format", "subset_name",
           "to_card_format"]

CANONICAL = ("image", "query", "label")
LABEL_SHAPES = ("list", "string")


def check_card_format(columns: Any, label_shape: Any, subsets: Any, where: str) -> tuple[dict, dict]:
    """The card's `columns:` and `subsets:` checked and normalised (subset value keys as strings)."""
    columns = dict(columns or {})
    unknown = sorted(set(columns) - set(CANONICAL))
    if unknown:
        raise HarnessError(f"{where}: columns: unknown key '{unknown[0]}' (map {', '.join(CANONICAL)} to your names)")
    if not all(isinstance(v, str) and v for v in columns.values()):
        raise HarnessError(f"{where}: columns: each value must be a column name")
    if label_shape not in LABEL_SHAPES:
        raise HarnessError(f"{where}: label_shape must be one of {', '.join(LABEL_SHAPES)}, got {label_shape!r}")
    subsets = dict(subsets or {})
    if subsets:
        if set(subsets) - {"column", "names"} or not isinstance(subsets.get("column"), str):
            raise HarnessError(f"{where}: subsets needs 'column' (the grouping column) and optional 'names' "
                               "({value: name})")
        names = subsets.get("names") or {}
        if not isinstance(names, dict):
            raise HarnessError(f"{where}: subsets.names must map column values to names")
        subsets = {"column": subsets["column"], "names": {str(k): str(v) for k, v in names.items()}}
    return columns, subsets


def data_format(bench) -> dict | None:
    """What the worker needs to read `bench`'s data (None: the canonical shape, no sub-scores)."""
    columns = {k: v for k, v in bench.columns.items() if k != v}
    if not columns and bench.label_shape == "list" and not bench.subsets:
        return None
    subsets = dict(bench.subsets)
    if subsets:  # the card's order of its subsets (JSON records sort mapping keys)
        subsets["order"] = list(subsets.get("names", {}).values())
    return {"card": bench.name, "columns": columns, "label_shape": bench.label_shape, "subsets": subsets}


def _source(fmt: dict, canonical: str) -> str:
    return fmt.get("columns", {}).get(canonical, canonical)


def _name(fmt: dict, canonical: str) -> str:
    """How errors name a column: the data set's name and the card's role for it."""
    return f"column '{_source(fmt, canonical)}' (card {fmt.get('card')}: {canonical})"


def apply_format(ds, fmt: dict | None, where: str):
    """`ds` renamed to image/query/label with string labels wrapped in a list, as the card says."""
    if not fmt:
        return ds
    import datasets

    present = list(ds.column_names)
    wanted = [(c, _source(fmt, c)) for c in CANONICAL]
    subset_column = (fmt.get("subsets") or {}).get("column")
    missing = [_name(fmt, c) for c, src in wanted if src not in present]
    if subset_column and subset_column not in present:
        missing.append(f"column '{subset_column}' (card {fmt.get('card')}: subsets.column)")
    if missing:
        raise HarnessError(f"{where}: missing {', '.join(missing)} (columns present: {', '.join(present) or 'none'})")
    # A canonical name the card maps elsewhere is not the data the card means: drop it, then rename.
    clash = [c for c, src in wanted if src != c and c in present and c not in dict(wanted).values()]
    ds = ds.remove_columns(clash) if clash else ds
    renames = {src: c for c, src in wanted if src != c}
    ds = ds.rename_columns(renames) if renames else ds
    label = ds.features["label"]
    is_string = isinstance(label, datasets.Value) and label.dtype in ("string", "large_string")
    if fmt.get("label_shape") == "string":
        if not is_string:
            raise HarnessError(f"{where}: {_name(fmt, 'label')} must be a string (label_shape: string), "
                               f"got {' '.join(repr(label).split())}")
        wrapped = [None if v is None else [v] for v in ds["label"]]
        ds = ds.remove_columns("label").add_column("label", wrapped,
                                                   feature=datasets.List(datasets.Value("string")))
    elif is_string:
        raise HarnessError(f"{where}: {_name(fmt, 'label')} holds strings, but the card says label_shape: list "
                           "(set label_shape: string in the card)")
    return ds


def subset_name(fmt: dict | None, value: Any) -> str | None:
    """The sub-score group of a row's subset-column value (its value as text when the card names none)."""
    subsets = (fmt or {}).get("subsets") or {}
    if not subsets or value is None:
        return None
    return subsets.get("names", {}).get(str(value), str(value))


def to_card_format(ds, fmt: dict | None):
    """The inverse of `apply_format` for the synthetic stand-in: canonical rows in the card's format.

    The subset column alternates over the card's named values chart by chart (the images), so every
    subset holds whole charts and both are present in any split of two charts or more.
    """
    if not fmt:
        return ds
    subsets = fmt.get("subsets") or {}
    if subsets:
        values = sorted(subsets.get("names") or {}) or ["0", "1"]  # sorted: the data key ignores the order
        typed = [int(v) if v.lstrip("-").isdigit() else v for v in values]
        order: dict[bytes, int] = {}
        column = []
        for cell in ds.with_format("arrow")["image"].to_pylist():
            key = cell["bytes"] if isinstance(cell, dict) else cell
            column.append(typed[order.setdefault(key, len(order)) % len(typed)])
        ds = ds.add_column(subsets["column"], column)
    if fmt.get("label_shape") == "string":
        import datasets

        first = [labels[0] for labels in ds["label"]]
        ds = ds.remove_columns("label").add_column("label", first, feature=datasets.Value("string"))
    renames = {c: _source(fmt, c) for c in CANONICAL if _source(fmt, c) != c}
    return ds.rename_columns(renames) if renames else ds
