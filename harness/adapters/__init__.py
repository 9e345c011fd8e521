"""Model adapters: one module per model family, plus offline twins (adapters/twins/).

Cards name their adapter by a registered name or a "module:Class" reference (harness.plugins).
"""

from harness.adapters.base import LoadRequest, ModelAdapter, Prepared, ProcessorAdapter
from harness.adapters.open import ADAPTERS, open_adapter, resolve_device

__all__ = ["ADAPTERS", "LoadRequest", "ModelAdapter", "Prepared", "ProcessorAdapter", "open_adapter",
           "resolve_device"]
