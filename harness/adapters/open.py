"""Turn a model identity from a spec into a loaded adapter (twin or hub weights)."""

from __future__ import annotations

from pathlib import Path

from harness.adapters.base import LoadRequest, ModelAdapter
from harness.errors import HarnessError
from harness.registry import load_model, resolve_object

__all__ = ["open_adapter", "resolve_device"]


def resolve_device(device: str) -> str:
    if device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def open_adapter(model: str, model_id: str, model_revision: str | None, *, dtype: str, device: str,
                 cache: Path, adapter_path: str | None = None, adapter_source: str | None = None,
                 adapter_revision: str | None = None, quantization: str | None = None,
                 load: bool = True) -> ModelAdapter:
    """Build the card's adapter for the base weights (+ a fine-tune), and load it."""
    card = load_model(model)
    processor_kwargs = dict(card.processor)
    if model_id.startswith("twin:"):
        from harness.adapters.twins.cache import ensure_twin

        source, revision = str(ensure_twin(card, cache)), None
        processor_kwargs.update(card.twin.get("processor", {}))
    else:
        source, revision = model_id, model_revision
    adapter_kind = "adapter"
    if adapter_source and card.study.get("hub_id") == adapter_source:
        adapter_kind = card.study.get("kind", "adapter")
    if adapter_path and (Path(adapter_path) / "config.json").exists() and not (
        Path(adapter_path) / "adapter_config.json"
    ).exists():
        adapter_kind = "full"
    request = LoadRequest(
        source=source,
        revision=revision,
        dtype=dtype,
        device=resolve_device(device),
        adapter_path=adapter_path,
        adapter_source=adapter_source,
        adapter_revision=adapter_revision,
        adapter_kind=adapter_kind,
        processor_kwargs=processor_kwargs,
        quantization=quantization,
    )
    adapter = resolve_object(card.adapter)(card, request)
    if load:
        try:
            adapter.load()
        except (OSError, ValueError) as exc:  # missing files, offline hub, bad revision, bad config
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            where = f"{source}@{revision}" if revision else source
            raise HarnessError(f"{model}: cannot load {where}: {first}") from None
    return adapter
