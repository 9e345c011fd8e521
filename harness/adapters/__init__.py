"""Model adapters: one module per model family, plus offline twins (adapters/twins/).

Cards name their adapter by a registered name or a "module:Class" reference (harness.plugins).
"""

from harness.adapters.base import LoadRequest, ModelAdapter, Prepared, ProcessorAdapter
from harness.adapters.open import ADAPTERS, open_adapter, resolve_device
from harness.adapters.protocol import Generation, InferenceAdapter, TrainingAdapter

__all__ = ["ADAPTERS", "Generation", "InferenceAdapter", "LoadRequest", "ModelAdapter", "Prepared",
           "ProcessorAdapter", "TrainingAdapter", "open_adapter", "resolve_device"]
