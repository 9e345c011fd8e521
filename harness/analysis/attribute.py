"""Which cause each part of a latency difference goes to, and what the two runs set differently.

The terms of `decompose` become causes:

- generated_tokens: more decode steps (longer answers, e.g. a fine-tune that learned to add brackets);
- image_tokens / prompt_tokens: more tokens to prefill;
- decode_per_token / prefill_per_token: each step or prompt token costs more;
- preprocess, postprocess, other.

Configuration differences recorded with the runs (`speed_factors`: beams, dtype, adapter merge,
quantisation, attention, batch size, hardware, library versions, ...) are named as the underlying
reason of the terms they act on: when one differs, the per-token and per-prompt-token terms are
reported under its name (e.g. `num_beams`), since two runs cannot separate it from them. Shares are
signed fractions of the total difference and sum to 1; `other` is the unexplained remainder.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from harness.analysis import words
from harness.analysis.decompose import run_figures, term_deltas, unit_terms
from harness.analysis.explanation import Cause, Explanation, Setting
from harness.errors import HarnessError

__all__ = ["FACTORS", "Group", "explain_pair", "settings"]

RATE_TERMS = ("prefill_rate", "decode_rate")
ALL_TERMS = frozenset({"preprocess", *RATE_TERMS, "generate", "postprocess"})
COMPUTE = frozenset({*RATE_TERMS, "generate"})

# factor -> (label, terms it acts on, expected direction when its value grows: +1 slower, 0 unknown)
FACTORS: dict[str, tuple[str, frozenset, int]] = {
    "model_id": ("model", ALL_TERMS, 0),
    "num_beams": ("beam search width", COMPUTE, +1),
    "dtype": ("requested dtype", COMPUTE, 0),
    "param_dtype": ("dtype of the loaded weights", COMPUTE, 0),
    "quantization": ("weight quantisation", COMPUTE, 0),
    "adapter": ("adapter state (none / adapter = unmerged PEFT / merged / full weights)", COMPUTE, 0),
    "attn_implementation": ("attention implementation", COMPUTE, 0),
    "do_sample": ("sampling", frozenset({"decode_rate", "generate"}), 0),
    "repetition_penalty": ("repetition penalty", frozenset({"decode_rate", "generate"}), 0),
    "max_new_tokens": ("max_new_tokens", frozenset(), 0),
    "min_new_tokens": ("min_new_tokens", frozenset(), 0),
    "temperature": ("temperature", frozenset(), 0),
    "top_p": ("top_p", frozenset(), 0),
    "top_k": ("top_k", frozenset(), 0),
    "batch_size": ("batch size", ALL_TERMS, 0),
    "processor_kwargs": ("image processor settings", frozenset({"preprocess"}), 0),
    "prompt_suffix": ("prompt", frozenset(), 0),
    "device": ("device", ALL_TERMS, 0),
    "hardware": ("hardware", ALL_TERMS, 0),
    "torch_threads": ("torch CPU threads", frozenset({"preprocess", *RATE_TERMS, "generate"}), 0),
    "torch": ("torch version", COMPUTE, 0),
    "transformers": ("transformers version", frozenset({"preprocess", *RATE_TERMS, "generate"}), 0),
    "peft": ("peft version", COMPUTE, 0),
    "backend": ("inference backend (transformers generate / vLLM engine)", ALL_TERMS, 0),
    "engine": ("vLLM engine settings", COMPUTE, 0),
    "vllm": ("vllm version", COMPUTE, 0),
}
# What a factor was before results recorded it (runs from before backends existed ran transformers).
UNRECORDED = {"backend": "transformers"}
SLOW_IF_TRUE = {"adapter": lambda v: v == "adapter"}  # an unmerged adapter adds matmuls
TERM_CAUSE = {"preprocess": "preprocess", "prefill_rate": "prefill_per_token", "decode_tokens": "generated_tokens",
              "decode_rate": "decode_per_token", "generate": "generate", "postprocess": "postprocess",
              "other": "other"}


@dataclass
class Group:
    """The terms attributed to one cause, before they are put into words."""

    name: str
    reasons: tuple[str, ...]
    delta: float = 0.0
    terms: list[str] = field(default_factory=list)


def settings(fa: dict, fb: dict) -> list[Setting]:
    """Every known speed factor either run recorded, A's and B's value, and whether they differ."""
    def norm(value) -> str:
        return json.dumps(value, sort_keys=True, default=str)

    def get(factors: dict, name: str):
        return factors.get(name, UNRECORDED.get(name))

    return [Setting(f, FACTORS[f][0], get(fa, f), get(fb, f), norm(get(fa, f)) != norm(get(fb, f)))
            for f in FACTORS if f in fa or f in fb]


def reasons_for(term: str, differing: dict[str, tuple], delta: float) -> tuple[str, ...]:
    """Configuration factors that act on `term`, dropping those whose known direction contradicts `delta`."""
    names = [f for f in differing if term in FACTORS[f][1]]
    if "dtype" in names and "param_dtype" in names:
        names.remove("param_dtype")  # the same difference, requested and loaded
    kept = []
    for name in names:
        va, vb = differing[name]
        direction = FACTORS[name][2]
        if name in SLOW_IF_TRUE:
            direction = (1 if SLOW_IF_TRUE[name](vb) else 0) - (1 if SLOW_IF_TRUE[name](va) else 0)
            if direction == 0:
                continue  # e.g. none vs merged vs full weights: the same computation per token
        elif direction and isinstance(va, (int, float)) and isinstance(vb, (int, float)):
            direction = direction * ((vb > va) - (vb < va))
        else:
            direction = None
        if direction is not None and direction * delta < 0:
            continue  # e.g. 4 beams cannot make decoding faster: leave the term under its own name
        kept.append(name)
    return tuple(kept)


def prompt_cause(a: dict, b: dict) -> str:
    """image_tokens when image tokens make up at least half of the change in prompt length."""
    d_image, d_prompt = b["image_tokens"] - a["image_tokens"], b["prompt_tokens"] - a["prompt_tokens"]
    return "image_tokens" if d_image and abs(d_image) >= 0.5 * abs(d_prompt) else "prompt_tokens"


def groups(deltas: dict[str, float], a: dict, b: dict, differing: dict[str, tuple]) -> list[Group]:
    """Term deltas collected under their causes, in term order."""
    out: dict[str, Group] = {}
    for term, delta in deltas.items():
        if abs(delta) < 1e-9:
            continue
        if term == "prefill_tokens":
            name = prompt_cause(a, b)
            reasons = tuple(f for f in ("processor_kwargs", "prompt_suffix") if f in differing)
        elif term in ("other", "decode_tokens"):
            name, reasons = TERM_CAUSE[term], ()
        else:
            reasons = reasons_for(term, differing, delta)
            name = "+".join(reasons) if reasons else TERM_CAUSE[term]
        group = out.setdefault(name, Group(name, reasons))
        group.delta += delta
        group.terms.append(term)
    return list(out.values())


def explain_pair(result_a: dict, result_b: dict, samples_a: list[dict] | None = None,
                 samples_b: list[dict] | None = None, basis: str = "auto") -> Explanation:
    """Attribute the latency difference of run B relative to run A (see the module docstrings)."""
    ra, rb = run_figures(result_a, samples_a), run_figures(result_b, samples_b)
    notes: list[str] = []
    if basis == "auto":
        same_bs = ra.factors.get("batch_size") == rb.factors.get("batch_size")
        basis = "batch" if same_bs else "sample"
        if not same_bs:
            notes.append("batch sizes differ, so latency is compared per sample (batch time / batch size)")
    if basis not in ("batch", "sample"):
        raise HarnessError(f"basis must be auto, batch or sample, not '{basis}'")
    if (ra.factors.get("backend") or "transformers") != (rb.factors.get("backend") or "transformers"):
        notes.append("the inference backends differ: a vLLM batch is one engine call with continuous batching, so "
                     "only end-to-end time is compared here; per-request TTFT / time per token are in each result "
                     "(latency.not_comparable), peak memory here is the harness process only, without vLLM's engine "
                     "process (manifest engine_memory), and `harness compare` reports answer parity")
    step_timed = ra.step_timed and rb.step_timed
    if not step_timed:
        notes.append("one run has no per-step timing, so prefill and decode are compared as one 'generate' term")
    a, b = unit_terms(ra, basis, step_timed), unit_terms(rb, basis, step_timed)
    deltas = term_deltas(a, b, step_timed)
    total = b["latency"] - a["latency"]
    config = settings(ra.factors, rb.factors)
    differing = {s.factor: (s.a, s.b) for s in config if s.differs}

    unit = "batch" if basis == "batch" else "sample"
    context = words.Context(a, b, ra, rb, differing, unit, samples_a, samples_b)
    causes = []
    for g in groups(deltas, a, b, differing):
        share = g.delta / total if abs(total) > 1e-9 else 0.0
        causes.append(Cause(g.name, share, words.sentence(g, share, context), g.delta, tuple(g.terms), g.reasons))
    causes.sort(key=lambda c: -abs(c.delta_ms))
    if a["latency"] and abs(total) < 0.02 * a["latency"]:
        notes.append("the runs differ by less than 2%, within typical run-to-run noise: the shares are unstable")
    rows = words.figure_rows(a, b, deltas, total, ra, rb, step_timed, unit)
    return Explanation(ra.name, rb.name, basis, a["latency"], b["latency"], rows, causes, config,
                       words.headline(ra, rb, a, b, total, causes, unit), notes)
