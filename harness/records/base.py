"""`to_dict` / `from_dict` for frozen dataclasses: declared keys only, types checked, one-line errors."""

from __future__ import annotations

import types
import typing
from dataclasses import MISSING, fields
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, ClassVar

from harness.errors import HarnessError
from harness.specs import SCHEMA_VERSION

__all__ = ["Record", "utc_now"]


def utc_now() -> str:
    """The current time as UTC ISO-8601 with milliseconds, e.g. 2026-12-01T21:50:03.123Z."""
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _accepts(hint, value) -> bool:
    origin = typing.get_origin(hint)
    if hint is Any:
        return True
    if origin in (typing.Union, types.UnionType):
        return any(_accepts(arg, value) for arg in typing.get_args(hint))
    if hint is type(None):
        return value is None
    base = origin or hint
    if isinstance(value, bool) and base is not bool:
        return False  # JSON true is not a count
    if base is float:
        return isinstance(value, int | float)
    if isinstance(base, type) and issubclass(base, Record):
        return isinstance(value, dict)
    return isinstance(value, base)


def _record_type(hint) -> type[Record] | None:
    for arg in (hint, *typing.get_args(hint)):
        if isinstance(arg, type) and issubclass(arg, Record):
            return arg
    return None


def _type_name(hint) -> str:
    return str(hint).replace("typing.", "").replace("harness.records.files.", "an object ")


class Record:
    """to_dict / from_dict for the frozen dataclasses of harness/records/files.py."""

    FILE: ClassVar[str] = "record"  # what errors call the record when no path is known
    VERSIONED: ClassVar[bool] = False  # carries schema_version, which must be the current one
    OPEN: ClassVar[str | None] = None  # a dict field that holds the undeclared keys, stored flat
    _HINTS: ClassVar[dict[type, dict]] = {}

    def to_dict(self) -> dict:
        out = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == self.OPEN:
                out.update(value)
            else:
                out[f.name] = value.to_dict() if isinstance(value, Record) else value
        return out

    @classmethod
    def from_dict(cls, data, source: str | Path | None = None):
        """The record of `data` (current layout: pass older files through `upgrade` first)."""
        where = str(source or cls.FILE)
        if not isinstance(data, dict):
            raise HarnessError(f"{where}: expected a JSON object, got {type(data).__name__}")
        hints = cls._HINTS.get(cls) or cls._HINTS.setdefault(cls, typing.get_type_hints(cls))
        declared = {f.name: f for f in fields(cls) if f.name != cls.OPEN}
        values = {}
        undeclared = {key: value for key, value in data.items() if key not in declared}
        if cls.OPEN:
            values[cls.OPEN] = undeclared
        elif undeclared:
            key = next(iter(undeclared))
            raise HarnessError(f"{where}: unknown key '{key}' (not in {cls.__name__}, harness/records/files.py)")
        for name, f in declared.items():
            if name not in data:
                if f.default is MISSING and f.default_factory is MISSING:
                    raise HarnessError(f"{where}: missing key '{name}'")
                continue
            value, hint = data[name], hints[name]
            if not _accepts(hint, value):
                raise HarnessError(f"{where}: key '{name}' must be {_type_name(hint)}, got {type(value).__name__}")
            nested = _record_type(hint)
            if nested is not None and value is not None:
                value = nested.from_dict(value, f"{where}: {name}")
            values[name] = value
        if cls.VERSIONED and values.get("schema_version", SCHEMA_VERSION) != SCHEMA_VERSION:
            raise HarnessError(f"{where}: schema_version {values['schema_version']} is not the current "
                               f"{SCHEMA_VERSION}; read it through harness.records.upgrade")
        return cls(**values)


# Public names for the other readers of declarative files (registry.py checks card and preset types).
accepts = _accepts
type_name = _type_name
