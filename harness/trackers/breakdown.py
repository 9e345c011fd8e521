"""Where a batch's time went, from stored per-sample rows (pure Python: no torch).

Every timed batch splits exactly into

    end_to_end = preprocess + prefill + decode + generate_tail + postprocess + overhead

- prefill: `generate` start to the first token (time to first token inside `generate`);
- decode: first token to the last step = (decode_steps) x decode_ms_per_token, decode_steps = steps - 1;
  decode_slots = decode_steps x samples in the batch (the decode steps every sample waited through);
- generate_tail: after the last step until `generate` returns (beam finalisation, slicing);
- overhead: clock reads and synchronisations between the measured blocks.

`latency_breakdown` keeps the sums over batches, so any later reader (the `explain` report) can
divide by batches or by samples and get exact means.
"""

from __future__ import annotations

__all__ = ["TOTAL_KEYS", "batch_records", "latency_breakdown"]

TOTAL_KEYS = ("end_to_end_ms", "preprocess_ms", "prefill_ms", "decode_ms", "generate_ms", "generate_tail_ms",
              "postprocess_ms", "overhead_ms", "decode_steps", "decode_slots", "prompt_tokens", "image_tokens",
              "generated_tokens")


def _decode_ms(row: dict) -> float | None:
    if row.get("decode_ms") is not None:
        return float(row["decode_ms"])
    if row.get("prefill_ms") is None:
        return None
    steps = int(row.get("batch_steps") or 0)
    per_token = row.get("decode_ms_per_token")
    return float(per_token) * (steps - 1) if per_token is not None and steps > 1 else 0.0


def batch_records(samples: list[dict]) -> list[dict]:
    """One record per batch: its times (shared by its rows) and its token counts (summed over rows)."""
    batches: dict[int, dict] = {}
    for row in samples:
        key = row.get("batch_index", 0)
        rec = batches.get(key)
        if rec is None:
            prefill = row.get("prefill_ms")
            steps = int(row.get("batch_steps") or 0)
            rec = batches[key] = {
                "batch_index": key,
                "samples": 0,
                "end_to_end_ms": float(row["latency_ms"]),
                "preprocess_ms": float(row.get("preprocess_ms") or 0.0),
                "generate_ms": float(row.get("generate_ms") or 0.0),
                "postprocess_ms": float(row.get("postprocess_ms") or 0.0),
                "prefill_ms": None if prefill is None else float(prefill),
                "decode_ms": _decode_ms(row),
                "decode_steps": max(steps - 1, 0),
                "prompt_tokens": 0,
                "image_tokens": 0,
                "generated_tokens": 0,
            }
        rec["samples"] += 1
        for key_ in ("prompt_tokens", "image_tokens", "generated_tokens"):
            rec[key_] += int(row.get(key_) or 0)
    out = []
    for rec in sorted(batches.values(), key=lambda r: r["batch_index"]):
        timed = rec["prefill_ms"] is not None
        inside = rec["prefill_ms"] + rec["decode_ms"] if timed else rec["generate_ms"]
        rec["generate_tail_ms"] = rec["generate_ms"] - inside if timed else 0.0
        rec["decode_slots"] = rec["decode_steps"] * rec["samples"]
        rec["overhead_ms"] = rec["end_to_end_ms"] - rec["preprocess_ms"] - rec["generate_ms"] - rec["postprocess_ms"]
        out.append(rec)
    return out


def latency_breakdown(samples: list[dict]) -> dict | None:
    """Sums over the timed batches of every term above, plus counts; None without samples."""
    records = batch_records(samples)
    if not records:
        return None
    step_timed = all(r["prefill_ms"] is not None for r in records)
    totals: dict = {}
    for key in TOTAL_KEYS:
        if key in ("prefill_ms", "decode_ms") and not step_timed:
            totals[key] = None
            continue
        totals[key] = round(sum(float(r[key]) for r in records), 6)
    return {
        "how": "sums over timed batches; end_to_end = preprocess + prefill + decode + generate_tail + "
               "postprocess + overhead; decode = decode_steps x ms per step; divide by batches or samples",
        "batches": len(records),
        "samples": sum(r["samples"] for r in records),
        "step_timed": step_timed,
        "totals": totals,
    }
