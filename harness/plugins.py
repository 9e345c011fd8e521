"""The one plug-in pattern: a named registry whose entries are objects or lazy "module:attr" references.

Adapters, metrics and runners register the same way, so a third-party package can add any of them
with one `register` call (or a model card can name an adapter by its "module:Class" reference), and
nothing heavy is imported until an entry is used.
"""

from __future__ import annotations

import importlib
from typing import Any

from harness.errors import HarnessError

__all__ = ["Registry", "resolve_object"]


def resolve_object(ref: str) -> Any:
    """Import "package.module:attr" lazily, with a one-line error naming the reference."""
    module_name, _, attr = ref.partition(":")
    if not module_name or not attr:
        raise HarnessError(f"'{ref}' is not a 'module:attribute' reference")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise HarnessError(f"cannot import {module_name} for '{ref}': {exc}") from None
    try:
        return getattr(module, attr)
    except AttributeError:
        raise HarnessError(f"{module_name} has no attribute '{attr}' (from '{ref}')") from None


class Registry:
    """Name -> object; a string value of the form "module:attr" is imported on first use."""

    def __init__(self, kind: str):
        self.kind = kind
        self._entries: dict[str, Any] = {}

    def register(self, name: str, entry: Any, *, replace: bool = False) -> Any:
        if name in self._entries and not replace:
            raise ValueError(f"{self.kind} {name!r} is already registered")
        self._entries[name] = entry
        return entry

    def unregister(self, name: str) -> None:
        """Remove an entry (tests and plug-ins that register temporarily)."""
        self._entries.pop(name, None)

    def names(self) -> tuple[str, ...]:
        return tuple(self._entries)

    def __contains__(self, name: str) -> bool:
        return name in self._entries

    def __iter__(self):
        return iter(self.names())

    def get(self, name: str) -> Any:
        """The entry registered as `name`, or the object a "module:attr" reference names."""
        if name not in self._entries:
            if ":" in name:
                return resolve_object(name)
            known = ", ".join(self._entries) or "(none)"
            raise HarnessError(f"unknown {self.kind} '{name}' (known: {known})")
        entry = self._entries[name]
        if isinstance(entry, str) and ":" in entry:
            entry = self._entries[name] = resolve_object(entry)
        return entry
