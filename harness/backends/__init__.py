"""Inference backends: which engine answers a run's questions (transformers `generate`, or vLLM).

Host-side (no torch, no vllm): the planner resolves a card's `backends:` section into the spec here.
A backend other than transformers has its own pins and image (vLLM needs transformers < 5.20, the
harness's main environment runs 5.24), so the planner swaps the model facts' `environment` / `image`
for the backend's: `harness doctor`, the local runner's skip and the docker runner then work unchanged.
Fine-tunes always train with transformers; a vLLM run reads the same fine-tune.
"""

from __future__ import annotations

from dataclasses import replace

from harness.errors import HarnessError
from harness.specs import ModelCard, ModelFacts

__all__ = ["BACKENDS", "DEFAULT_BACKEND", "ENGINE_DEFAULTS", "card_backends", "resolve_backend"]

DEFAULT_BACKEND = "transformers"
BACKENDS = ("transformers", "vllm")

# vLLM engine settings recorded in the spec (and so its hash). max_model_len None: the model's own;
# kv_cache_space_gb: VLLM_CPU_KVCACHE_SPACE on a CPU (ignored on a GPU, where gpu_memory_utilization
# sizes the KV cache); lora: "merged" folds the fine-tune into the weights before the engine loads them.
ENGINE_DEFAULTS = {
    "max_model_len": None,
    "gpu_memory_utilization": 0.9,
    "enforce_eager": False,
    "max_num_seqs": 256,
    "kv_cache_space_gb": 1,
    "lora": "merged",
}
LORA_MODES = ("merged",)


def card_backends(card: ModelCard) -> list[str]:
    """The backends a card says its model runs on (`supports: backends:`); transformers when unsaid."""
    return list(card.supports.get("backends") or [DEFAULT_BACKEND])


def resolve_backend(card: ModelCard, facts: ModelFacts, backend: str, twin: bool) -> tuple[ModelFacts, dict | None]:
    """(model facts, engine settings) for `backend`; one line when the card does not support it."""
    if backend not in BACKENDS:
        raise HarnessError(f"--backend {backend}: unknown backend (use {', '.join(BACKENDS)})")
    if backend not in card_backends(card):
        raise HarnessError(f"{card.source_file or card.name}: {card.name} does not support --backend {backend} "
                           f"(supports: backends: {card_backends(card)})")
    if backend == DEFAULT_BACKEND:
        return facts, None
    section = dict(card.backends.get(backend) or {})
    where = f"{card.source_file or card.name}: backends.{backend}"
    unknown = sorted(set(section) - {"environment", "environment_notes", "image", "engine", "twin_engine"})
    if unknown:
        raise HarnessError(f"{where}: unknown key '{unknown[0]}' (known: engine, environment, environment_notes, "
                           "image, twin_engine)")
    twin_engine = (section.get("twin_engine") or {}) if twin else {}
    engine = {**ENGINE_DEFAULTS, **(section.get("engine") or {}), **twin_engine}
    bad = sorted(set(engine) - set(ENGINE_DEFAULTS))
    if bad:
        raise HarnessError(f"{where}: unknown engine setting '{bad[0]}' (known: {', '.join(ENGINE_DEFAULTS)})")
    if engine["lora"] not in LORA_MODES:
        raise HarnessError(f"{where}: engine.lora {engine['lora']!r} is not supported (use {', '.join(LORA_MODES)})")
    if not section.get("environment"):
        raise HarnessError(f"{where}: no environment (the backend's pinned packages) given")
    facts = replace(facts, environment=dict(section["environment"]),
                    environment_notes=dict(section.get("environment_notes") or {}),
                    image=section.get("image") or facts.image)
    return facts, engine
