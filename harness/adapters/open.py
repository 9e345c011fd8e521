"""Turn a spec's model facts into a loaded adapter (twin or hub weights). Reads no model card."""

from __future__ import annotations

from pathlib import Path

from harness.adapters.base import LoadRequest, ModelAdapter
from harness.errors import HarnessError
from harness.plugins import Registry
from harness.specs import ModelFacts

__all__ = ["ADAPTERS", "open_adapter", "resolve_device"]

ADAPTERS = Registry("adapter")
ADAPTERS.register("chat", "harness.adapters.chat:ChatAdapter")
ADAPTERS.register("qwen2vl", "harness.adapters.qwen2vl:Qwen2VLAdapter")
ADAPTERS.register("smolvlm", "harness.adapters.smolvlm:SmolVLMAdapter")
ADAPTERS.register("moondream", "harness.adapters.moondream:Moondream2Adapter")
ADAPTERS.register("moondream2025", "harness.adapters.moondream2025:Moondream2025Adapter")


def resolve_device(device: str) -> str:
    if device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def _check_device(device: str) -> None:
    """A CUDA device that is not there is one line before any weights load, not a driver traceback."""
    if not str(device).startswith("cuda"):
        return
    import torch

    if not torch.cuda.is_available():
        raise HarnessError(f"--device {device}: no CUDA device is available here (use --device cpu)")
    index = str(device).partition(":")[2]
    if index and int(index) >= torch.cuda.device_count():
        raise HarnessError(f"--device {device}: only {torch.cuda.device_count()} CUDA device(s) here")


def open_adapter(facts: ModelFacts, model_id: str, model_revision: str | None, *, dtype: str, device: str,
                 cache: Path, adapter_path: str | None = None, adapter_source: str | None = None,
                 adapter_revision: str | None = None, adapter_kind: str | None = None,
                 quantization: str | None = None, load: bool = True) -> ModelAdapter:
    """Build the model's adapter for the base weights (+ a fine-tune), and load it."""
    if model_id.startswith("twin:"):
        from harness.adapters.twins.cache import ensure_twin

        source, revision = str(ensure_twin(facts, cache)), None
    else:
        source, revision = model_id, model_revision
    device = resolve_device(device)
    _check_device(device)
    request = LoadRequest(
        source=source,
        revision=revision,
        dtype=dtype,
        device=device,
        adapter_path=adapter_path,
        adapter_source=adapter_source,
        adapter_revision=adapter_revision,
        adapter_kind=adapter_kind or "adapter",
        processor_kwargs=dict(facts.processor),
        quantization=quantization,
        attn_implementation=facts.attn_implementation,
    )
    adapter = ADAPTERS.get(facts.adapter)(facts, request)
    if load:
        try:
            adapter.load()
        except (OSError, ValueError) as exc:  # missing files, offline hub, bad revision, bad config
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            where = f"{source}@{revision}" if revision else source
            raise HarnessError(f"{facts.name}: cannot load {where}: {first}") from None
    return adapter
