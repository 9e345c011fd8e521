"""Command-line overrides: `--set processor.size.longest_edge=768`, `--decoding num_beams=4`.

An override is an edit of the model card (or the benchmark's decoding) made before planning, so it
changes the run id exactly as the same edit in the YAML file would: the planner applies it to the
card's fields and validates the result with the same typed checks as a card read from disk.
Values are parsed as YAML scalars/flow collections (`8`, `1e-4`, `true`, `null`, `[q_proj, v_proj]`).
"""

from __future__ import annotations

import yaml

from harness.errors import HarnessError

__all__ = ["CARD_OVERRIDABLE", "parse_assignments", "nest"]

# Card fields that `--set` may change: what a user tunes between runs. Identity fields (name, hub id,
# adapter class) are not overrides: a different model is a different card.
CARD_OVERRIDABLE = ("attn_implementation", "dtype", "finetune", "generation", "processor", "revision")


def _value(text: str, where: str):
    try:
        return yaml.safe_load(text) if text.strip() else ""
    except yaml.YAMLError:
        raise HarnessError(f"{where}: cannot parse the value '{text}'") from None


def parse_assignments(items: list[str] | None, flag: str) -> list[tuple[tuple[str, ...], object]]:
    """['a.b=1', ...] -> [(('a', 'b'), 1), ...]; a malformed item is a one-line error naming it."""
    out = []
    for item in items or []:
        key, sep, raw = item.partition("=")
        path = tuple(part.strip() for part in key.split("."))
        if not sep or not all(path):
            raise HarnessError(f"{flag} {item}: expected KEY=VALUE (e.g. {flag} processor.size.longest_edge=768)")
        out.append((path, _value(raw, f"{flag} {item}")))
    return out


def nest(assignments: list[tuple[tuple[str, ...], object]]) -> dict:
    """[(('a', 'b'), 1)] -> {'a': {'b': 1}}; later assignments win."""
    out: dict = {}
    for path, value in assignments:
        node = out
        for part in path[:-1]:
            child = node.get(part)
            if not isinstance(child, dict):
                child = node[part] = {}
            node = child
        node[path[-1]] = value
    return out
