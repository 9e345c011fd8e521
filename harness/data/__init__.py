"""Chart QA data: load PJN_CHARTS-shaped splits (disk, parquet, hub), rebuild the set from ChartQA,
or generate a synthetic one with exact answers.

Names are imported on first use, so ``harness.data.to_rgb`` or a synthetic-chart worker process
does not pay for importing ``datasets``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from harness.data.build import build_pjn_charts
    from harness.data.example import ChartSplit, Example
    from harness.data.images import to_rgb
    from harness.data.load import load_split
    from harness.data.schema import validate_features
    from harness.data.synth import SYNTH_VOCAB_TEXT, write_synthetic

__all__ = [
    "Example",
    "ChartSplit",
    "load_split",
    "to_rgb",
    "write_synthetic",
    "build_pjn_charts",
    "SYNTH_VOCAB_TEXT",
    "validate_features",
]

_HOME = {
    "Example": "example",
    "ChartSplit": "example",
    "load_split": "load",
    "to_rgb": "images",
    "write_synthetic": "synth",
    "build_pjn_charts": "build",
    "SYNTH_VOCAB_TEXT": "synth",
    "validate_features": "schema",
}


def __getattr__(name: str) -> Any:
    if name not in _HOME:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{_HOME[name]}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
