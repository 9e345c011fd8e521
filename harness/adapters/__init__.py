"""Model adapters: one module per model family, plus offline twins (adapters/twins/)."""

from harness.adapters.base import LoadRequest, ModelAdapter, Prepared, ProcessorAdapter
from harness.adapters.open import open_adapter, resolve_device

__all__ = ["LoadRequest", "ModelAdapter", "Prepared", "ProcessorAdapter", "open_adapter", "resolve_device"]
