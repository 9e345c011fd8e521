"""Build each twin once per cache folder; later runs (and other processes) reuse it."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from harness.adapters.twins.generic import card_twin_inputs, inputs_key
from harness.errors import HarnessError
from harness.plugins import resolve_object
from harness.specs import ModelCard, ModelFacts

__all__ = ["cache_dir", "ensure_twin"]

# Bump to rebuild cached twins when a builder changes.
TWIN_VERSION = "5"


def cache_dir() -> Path:
    return Path(os.environ.get("HARNESS_CACHE_DIR", ".harness")).expanduser()


def ensure_twin(card: ModelCard | ModelFacts, root: Path | None = None) -> Path:
    """Return the folder of the model's twin, building it atomically if it is missing."""
    ref = card.twin_builder if isinstance(card, ModelFacts) else card.twin.get("builder")
    inputs = card.twin_inputs if isinstance(card, ModelFacts) else card_twin_inputs(card)
    # A generic twin is defined by its inputs (config, template, tokens): an edited card builds a new one.
    suffix = f"-{inputs_key(inputs)}" if inputs else ""
    target = (root or cache_dir()) / "twins" / f"{card.name}-v{TWIN_VERSION}{suffix}"
    if (target / ".complete").exists():
        return target
    if not ref:
        raise HarnessError(f"{card.name}: no offline twin (the card names no twin builder)")
    builder = resolve_object(ref)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{card.name}-", dir=target.parent))
    try:
        builder(tmp, inputs=inputs) if inputs else builder(tmp)
        (tmp / ".complete").write_text(TWIN_VERSION)
        if target.exists():  # an incomplete leftover from an interrupted build
            shutil.rmtree(target)
        os.replace(tmp, target)
    except FileExistsError:  # another process finished first
        shutil.rmtree(tmp, ignore_errors=True)
    finally:
        if tmp.exists() and tmp != target:
            shutil.rmtree(tmp, ignore_errors=True)
    return target

