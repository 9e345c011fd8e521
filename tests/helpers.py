"""Small helpers shared by tests (not fixtures): reading stored runs."""

from __future__ import annotations

import json
from pathlib import Path


def read_results(results_dir: Path) -> dict[tuple[str, str, int], dict]:
    """(model, variant, batch size) -> result.json of every finished run under the folder."""
    out = {}
    for path in Path(results_dir).glob("*/result.json"):
        result = json.loads(path.read_text())
        spec = result["spec"]
        result["_dir"] = str(path.parent)
        out[(spec["model"], spec["variant"], spec["batch_size"])] = result
    return out


def read_samples(run_dir: str | Path) -> list[dict]:
    return [json.loads(line) for line in (Path(run_dir) / "samples.jsonl").read_text().splitlines()]
