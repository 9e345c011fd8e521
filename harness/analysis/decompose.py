"""A run's latency split into additive terms, and a pair's difference split term by term (exactly).

Per unit (a batch when both runs used the same batch size, else a sample):

    latency = preprocess + prefill + decode + postprocess + other
    prefill = prompt_tokens x prefill_ms_per_prompt_token            (P x r)
    decode  = decode_steps  x decode_ms_per_step                     (N x d)

`other` is the measured rest (end of `generate`, clock reads), so the sum is exact. Each term's
difference B - A is split; products are split symmetrically (midpoint / Shapley: dN x mean(d) +
dd x mean(N)), so the parts add up to the difference whatever the order.

Reads the current result shape only (`latency.breakdown`, `speed_factors`); older shapes are
upgraded by the records module before they get here.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from harness.errors import HarnessError

__all__ = ["RunFigures", "run_figures", "split", "term_deltas", "unit_terms"]


@dataclass
class RunFigures:
    """What the decomposition needs of one run: breakdown totals, counts, speed factors, summaries."""

    name: str
    totals: dict
    batches: int
    samples: int
    step_timed: bool
    factors: dict
    latency: dict
    memory: dict

    def per(self, basis: str) -> float:
        return float(self.batches if basis == "batch" else self.samples)


def run_figures(result: dict, samples: list[dict] | None) -> RunFigures:
    """The run's figures; the breakdown is recomputed from samples when given (the same sums)."""
    from harness.trackers.breakdown import latency_breakdown

    name = result.get("run_id") or Path(str(result.get("_dir", "?"))).name
    latency = result.get("latency") or {}
    breakdown = latency_breakdown(samples) if samples else latency.get("breakdown")
    if not breakdown:
        raise HarnessError(f"run {name}: result.json has no latency.breakdown and there is no samples.jsonl to "
                           "rebuild it from (no timed samples)")
    if not result.get("speed_factors"):
        raise HarnessError(f"run {name}: result.json has no speed_factors")
    return RunFigures(name, dict(breakdown["totals"]), int(breakdown["batches"]), int(breakdown["samples"]),
                      bool(breakdown["step_timed"]), dict(result["speed_factors"]), latency,
                      result.get("memory") or {})


def unit_terms(run: RunFigures, basis: str, step_timed: bool) -> dict:
    """Per-unit figures of one run: the additive terms and the factors of the two products."""
    t, k = run.totals, run.per(basis)

    def per(key: str) -> float:
        value = t.get(key)
        return float(value) / k if value is not None else 0.0

    samples = max(run.samples, 1)
    out = {"latency": per("end_to_end_ms"), "preprocess": per("preprocess_ms"), "postprocess": per("postprocess_ms"),
           "prompt_tokens": per("prompt_tokens"), "image_tokens": per("image_tokens"),
           "image_tokens_per_sample": float(t.get("image_tokens") or 0) / samples,
           "generated_tokens_per_sample": float(t.get("generated_tokens") or 0) / samples}
    if step_timed:
        # Per batch: steps of the batch. Per sample: the steps each sample waited through (slots), so a
        # batch of 4 and a batch of 1 that both generate 16 tokens have the same count.
        steps = per("decode_steps") if basis == "batch" else per("decode_slots")
        out.update(prefill=per("prefill_ms"), decode=per("decode_ms"), decode_steps=steps)
        out["prefill_per_token"] = out["prefill"] / out["prompt_tokens"] if out["prompt_tokens"] else None
        out["decode_per_step"] = out["decode"] / out["decode_steps"] if out["decode_steps"] else None
        out["other"] = out["latency"] - out["preprocess"] - out["prefill"] - out["decode"] - out["postprocess"]
    else:
        out["generate"] = per("generate_ms")
        out["other"] = out["latency"] - out["preprocess"] - out["generate"] - out["postprocess"]
    return out


def split(x_a: float, x_b: float, y_a: float | None, y_b: float | None) -> tuple[float, float]:
    """Split x_b*y_b - x_a*y_a into a part due to x and a part due to y (midpoint rule, exact)."""
    if y_a is None and y_b is None:
        return 0.0, 0.0
    y_a = y_b if y_a is None else y_a  # one side has no steps: its rate is unknown, not different
    y_b = y_a if y_b is None else y_b
    return (x_b - x_a) * (y_a + y_b) / 2.0, (y_b - y_a) * (x_a + x_b) / 2.0


def term_deltas(a: dict, b: dict, step_timed: bool) -> dict[str, float]:
    """B - A per term: preprocess, prefill_tokens/_rate, decode_tokens/_rate (or generate), postprocess, other."""
    deltas = {"preprocess": b["preprocess"] - a["preprocess"], "postprocess": b["postprocess"] - a["postprocess"],
              "other": b["other"] - a["other"]}
    if step_timed:
        deltas["prefill_tokens"], deltas["prefill_rate"] = split(
            a["prompt_tokens"], b["prompt_tokens"], a["prefill_per_token"], b["prefill_per_token"])
        deltas["decode_tokens"], deltas["decode_rate"] = split(
            a["decode_steps"], b["decode_steps"], a["decode_per_step"], b["decode_per_step"])
        # Rounding guard: whatever the split missed (one side without tokens) lands in its rate term.
        deltas["prefill_rate"] += (b["prefill"] - a["prefill"]) - deltas["prefill_tokens"] - deltas["prefill_rate"]
        deltas["decode_rate"] += (b["decode"] - a["decode"]) - deltas["decode_tokens"] - deltas["decode_rate"]
    else:
        deltas["generate"] = b["generate"] - a["generate"]
    return deltas
