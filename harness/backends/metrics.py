"""Latency in an engine's own terms (vLLM request metrics), and what of it means something else than
the transformers backend's figures.

The transformers backend runs one `generate` per batch and stamps every decoding step itself; vLLM
schedules all requests of a `generate` call continuously, so a "batch" there is the set of requests
handed to the engine at once, and the engine reports each request's time to first token and time per
output token. Those are summarised here; the batch-level keys that exist in both backends' results but
measure different things are listed in `not_comparable`; runs of two backends are never latency
pairs (analysis/compare.py `pair_key`), and `explain` says so when asked about such a pair.
"""

from __future__ import annotations

from harness.trackers import summarize

__all__ = ["ENGINE_KEYS", "NOT_COMPARABLE", "engine_latency"]

ENGINE_KEYS = ("engine_ttft_ms", "engine_tpot_ms", "engine_queue_ms")

NOT_COMPARABLE = {
    "latency_ms": "a vLLM 'batch' is one engine.generate call over all its requests (continuous batching), "
                  "not one padded forward batch: its per-sample latency is that call's wall time",
    "batch_latency_ms": "the same: an engine.generate call, not a padded batch",
    "ttft_ms": "no decoding-step stamps from vLLM: see engine_ttft_ms (per request, engine clock)",
    "prefill_ms": "no decoding-step stamps from vLLM",
    "decode_ms_per_token": "no decoding-step stamps from vLLM: see engine_tpot_ms (per request)",
    "engine_ttft_ms": "per request from vLLM's scheduler (arrival to first token, queueing included); the "
                      "transformers backend has no such figure",
    "engine_tpot_ms": "per request from vLLM (first to last token / (tokens - 1)); the transformers "
                      "backend's decode_ms_per_token is per padded batch step",
}


def engine_latency(samples: list[dict]) -> dict:
    """Summaries of the engine's per-request figures, and `not_comparable`; {} for runs without them."""
    if not any(row.get(key) is not None for row in samples for key in ENGINE_KEYS):
        return {}
    out = {key: summarize([row.get(key) for row in samples]) for key in ENGINE_KEYS}
    out["not_comparable"] = dict(NOT_COMPARABLE)
    return out

