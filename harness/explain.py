"""Why is run B slower (or faster) than run A? A latency difference attributed to its causes.

Pure host-side code (no torch): it reads result.json (and samples.jsonl when given), so the CLI
(`harness explain RUN_A RUN_B`) and the leaderboard's base/fine-tuned sections share it.

The decomposition. Per unit (a batch when both runs used the same batch size, else a sample):

    latency = preprocess + prefill + decode + postprocess + other
    prefill = prompt_tokens x prefill_ms_per_prompt_token            (P x r)
    decode  = decode_steps  x decode_ms_per_step                     (N x d)

`other` is the measured rest (end of `generate`, clock reads), so the sum is exact. Each term's
difference B - A is attributed; products are split symmetrically (midpoint / Shapley: dN x mean(d) +
dd x mean(N)), so the parts add up to the difference whatever the order. The terms become causes:

- generated_tokens: more decode steps (longer answers, e.g. a fine-tune that learned to add brackets);
- image_tokens / prompt_tokens: more tokens to prefill;
- decode_per_token / prefill_per_token: each step or prompt token costs more;
- preprocess, postprocess, other.

Configuration differences recorded with the runs (beams, dtype, adapter merge, quantisation,
attention, batch size, hardware, library versions, ...) are named as the underlying reason of the
terms they act on: when one differs, the per-token and per-prompt-token terms are reported under
its name (e.g. `num_beams`), since two runs cannot separate it from them. Shares are signed fractions
of the total difference and sum to 1; `other` is the unexplained remainder.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from harness.errors import HarnessError
from harness.store import read_json

__all__ = ["Cause", "Explanation", "explain_pair", "find_pairs", "load_run", "load_samples"]

RATE_TERMS = ("prefill_rate", "decode_rate")

# factor -> (label, terms it acts on, expected direction when its value grows: +1 slower, 0 unknown)
FACTORS: dict[str, tuple[str, frozenset, int]] = {
    "model_id": ("model", frozenset({"preprocess", *RATE_TERMS, "generate", "postprocess"}), 0),
    "num_beams": ("beam search width", frozenset({"prefill_rate", "decode_rate", "generate"}), +1),
    "dtype": ("requested dtype", frozenset({*RATE_TERMS, "generate"}), 0),
    "param_dtype": ("dtype of the loaded weights", frozenset({*RATE_TERMS, "generate"}), 0),
    "quantization": ("weight quantisation", frozenset({*RATE_TERMS, "generate"}), 0),
    "adapter": ("adapter state (none / adapter = unmerged PEFT / merged / full weights)",
                frozenset({*RATE_TERMS, "generate"}), 0),
    "attn_implementation": ("attention implementation", frozenset({*RATE_TERMS, "generate"}), 0),
    "do_sample": ("sampling", frozenset({"decode_rate", "generate"}), 0),
    "repetition_penalty": ("repetition penalty", frozenset({"decode_rate", "generate"}), 0),
    "max_new_tokens": ("max_new_tokens", frozenset(), 0),
    "min_new_tokens": ("min_new_tokens", frozenset(), 0),
    "temperature": ("temperature", frozenset(), 0),
    "top_p": ("top_p", frozenset(), 0),
    "top_k": ("top_k", frozenset(), 0),
    "batch_size": ("batch size", frozenset({"preprocess", *RATE_TERMS, "generate", "postprocess"}), 0),
    "processor_kwargs": ("image processor settings", frozenset({"preprocess"}), 0),
    "prompt_suffix": ("prompt", frozenset(), 0),
    "device": ("device", frozenset({"preprocess", *RATE_TERMS, "generate", "postprocess"}), 0),
    "hardware": ("hardware", frozenset({"preprocess", *RATE_TERMS, "generate", "postprocess"}), 0),
    "torch_threads": ("torch CPU threads", frozenset({"preprocess", *RATE_TERMS, "generate"}), 0),
    "torch": ("torch version", frozenset({*RATE_TERMS, "generate"}), 0),
    "transformers": ("transformers version", frozenset({"preprocess", *RATE_TERMS, "generate"}), 0),
    "peft": ("peft version", frozenset({*RATE_TERMS, "generate"}), 0),
}
# Decoding settings that change how many tokens are generated: named in the generated_tokens sentence.
TOKEN_FACTORS = ("num_beams", "max_new_tokens", "min_new_tokens", "do_sample", "temperature", "top_p", "top_k",
                 "repetition_penalty", "prompt_suffix")
SLOW_IF_TRUE = {"adapter": lambda v: v == "adapter"}  # an unmerged adapter adds matmuls
MEMORY_KEYS = ("torch_max_allocated_mb", "torch_max_reserved_mb", "nvml_peak_used_mb", "rss_peak_mb")


@dataclass(frozen=True)
class Cause:
    """One reason for the difference: `share` is its signed fraction of (B - A); all shares sum to 1."""

    name: str
    share: float
    sentence: str
    delta_ms: float = 0.0
    terms: tuple[str, ...] = ()
    reasons: tuple[str, ...] = ()  # configuration factors named as the underlying reason


@dataclass
class Explanation:
    run_a: str
    run_b: str
    basis: str  # "batch" or "sample": what one latency figure is
    latency_a_ms: float
    latency_b_ms: float
    rows: list[dict]  # the table: quantity, a, b, delta, share
    causes: list[Cause]
    config: list[dict] = field(default_factory=list)  # factor, a, b, differs
    headline: str = ""
    notes: list[str] = field(default_factory=list)

    @property
    def delta_ms(self) -> float:
        return self.latency_b_ms - self.latency_a_ms

    def cause(self, name: str) -> Cause | None:
        return next((c for c in self.causes if c.name == name), None)

    def to_dict(self) -> dict:
        data = asdict(self)
        data["delta_ms"] = self.delta_ms
        return data

    def to_markdown(self, title: str | None = None) -> str:
        out = [f"### {title}", ""] if title else []
        out += [self.headline, "", "| quantity | A | B | B − A | share of difference |", "|---|---|---|---|---|"]
        for row in self.rows:
            out.append(f"| {row['quantity']} | {_num(row['a'])} | {_num(row['b'])} | {_num(row['delta'], True)} "
                       f"| {_pct(row.get('share'))} |")
        differing = [c for c in self.config if c["differs"]]
        if differing:
            out += ["", "| setting that differs | A | B |", "|---|---|---|"]
            out += [f"| {c['factor']} | {_cell(c['a'])} | {_cell(c['b'])} |" for c in differing]
        out += [""] + [f"- {c.sentence}" for c in self.causes]
        out += [f"- Note: {n}" for n in self.notes]
        return "\n".join(out) + "\n"


# --- loading --------------------------------------------------------------------------------------

def load_samples(run_dir: str | Path) -> list[dict] | None:
    """Rows of <run_dir>/samples.jsonl (a torn last line is skipped), or None if there is none."""
    path = Path(run_dir) / "samples.jsonl"
    if not path.exists():
        return None
    rows, seen = [], set()
    for line in path.read_text().splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue
        if row.get("id") not in seen:
            seen.add(row.get("id"))
            rows.append(row)
    return rows


def load_run(ref: str | Path, results_dir: str | Path | None = None) -> tuple[dict, list[dict] | None]:
    """(result, samples) of a run given as a folder, a result.json, a run id, or a unique run-id prefix."""
    ref_path = Path(ref)
    candidates = [ref_path, ref_path.parent] if ref_path.name == "result.json" else [ref_path]
    if results_dir is not None:
        candidates.append(Path(results_dir) / str(ref))
    for folder in candidates:
        if (folder / "result.json").is_file():
            return read_json(folder / "result.json"), load_samples(folder)
    if results_dir is not None and Path(results_dir).is_dir():
        matches = sorted(p.parent for p in Path(results_dir).glob(f"{ref}*/result.json"))
        if len(matches) == 1:
            return read_json(matches[0] / "result.json"), load_samples(matches[0])
        if len(matches) > 1:
            names = ", ".join(m.name for m in matches[:6])
            raise HarnessError(f"'{ref}' matches several runs under {results_dir}: {names}; give more of the run id")
    where = f" or under {results_dir}" if results_dir is not None else ""
    raise HarnessError(f"no finished run '{ref}' (a folder with result.json{where})")


def find_pairs(results: list[dict]) -> list[tuple[dict, dict]]:
    """(base, other variant) pairs of the same model, data, benchmark and batch size, for the leaderboard."""
    def key(r: dict) -> tuple:
        s = r["spec"]
        return (s["model"], s.get("benchmark"), s.get("dataset"), s.get("split"), s.get("limit"), s["batch_size"],
                s.get("preset"), s.get("device"))

    bases = {key(r): r for r in results if r["spec"]["variant"] == "base"}
    pairs = [(bases[key(r)], r) for r in results if r["spec"]["variant"] != "base" and key(r) in bases]
    return sorted(pairs, key=lambda p: (p[1]["spec"]["model"], p[1]["spec"]["batch_size"], p[1]["spec"]["variant"]))


# --- the per-run figures ---------------------------------------------------------------------------

@dataclass
class _Run:
    name: str
    totals: dict
    batches: int
    samples: int
    step_timed: bool
    approximate: bool
    factors: dict
    latency: dict
    memory: dict

    def per(self, basis: str) -> float:
        return float(self.batches if basis == "batch" else self.samples)


def _totals_from_summaries(latency: dict) -> tuple[dict, int, int, bool]:
    """Old results without a breakdown: rebuild totals from the summaries (approximate)."""
    batches = int(latency.get("batches") or 1)
    samples = int(latency.get("timed_samples") or batches)

    def mean(key: str) -> float | None:
        s = latency.get(key)
        return None if not s else float(s["mean"])

    end = mean("batch_latency_ms") or 0.0
    prefill, per_token = mean("prefill_ms"), mean("decode_ms_per_token")
    steps = max((mean("generated_tokens") or 1.0) - 1.0, 0.0)
    decode = (per_token or 0.0) * steps if prefill is not None else None
    pre, post = mean("preprocess_ms") or 0.0, mean("postprocess_ms") or 0.0
    generate = mean("generate_ms") or end - pre - post
    totals = {
        "end_to_end_ms": end * batches, "preprocess_ms": pre * batches, "postprocess_ms": post * batches,
        "generate_ms": generate * batches, "prefill_ms": None if prefill is None else prefill * batches,
        "decode_ms": None if decode is None else decode * batches, "decode_steps": steps * batches,
        "decode_slots": steps * samples,
        "prompt_tokens": (mean("prompt_tokens") or 0.0) * samples,
        "image_tokens": (mean("image_tokens") or 0.0) * samples,
        "generated_tokens": (mean("generated_tokens") or 0.0) * samples,
    }
    return totals, batches, samples, prefill is not None


def _factors(result: dict, samples: list[dict] | None) -> dict:
    """The run's speed factors; derived from spec and manifest for results older than `speed_factors`."""
    if result.get("speed_factors"):
        return dict(result["speed_factors"])
    spec, man = result.get("spec", {}), result.get("manifest", {})
    decoding = {**(spec.get("decoding") or {}), **(man.get("decoding") or {})}
    packages = man.get("packages") or {}
    if not spec.get("adapter_id"):
        adapter = "none"
    elif man.get("adapter_kind") == "full":
        adapter = "full"
    else:
        adapter = "merged" if man.get("adapter_merged") else "adapter"
    rows = samples or []
    image = [r["image_tokens"] for r in rows if r.get("image_tokens") is not None]
    return {
        "model_id": spec.get("model_id"),
        "dtype": spec.get("dtype") or man.get("dtype"), "param_dtype": man.get("param_dtype"),
        "attn_implementation": man.get("attn_implementation"), "quantization": man.get("quantization"),
        "adapter": adapter, "adapter_merged": bool(man.get("adapter_merged")),
        **{k: decoding.get(k) for k in ("num_beams", "max_new_tokens", "min_new_tokens", "do_sample", "temperature",
                                        "top_p", "top_k", "repetition_penalty")},
        "batch_size": spec.get("batch_size"),
        "image_tokens_per_sample": round(sum(image) / len(image), 2) if image else None,
        "prompt_suffix": spec.get("prompt_suffix"), "device": man.get("device"), "hardware": man.get("hardware"),
        "torch_threads": man.get("torch_threads"), "torch": packages.get("torch"),
        "transformers": packages.get("transformers"), "peft": packages.get("peft"),
    }


def _run(result: dict, samples: list[dict] | None) -> _Run:
    from harness.trackers.breakdown import latency_breakdown

    latency = result.get("latency") or {}
    breakdown = latency_breakdown(samples) if samples else latency.get("breakdown")
    if breakdown:
        totals, batches, n = dict(breakdown["totals"]), int(breakdown["batches"]), int(breakdown["samples"])
        step_timed, approximate = bool(breakdown["step_timed"]), False
    else:
        totals, batches, n, step_timed = _totals_from_summaries(latency)
        approximate = True
    name = result.get("run_id") or Path(str(result.get("_dir", "?"))).name
    return _Run(name, totals, batches, n, step_timed, approximate, _factors(result, samples), latency,
                result.get("memory") or {})


# --- the decomposition -----------------------------------------------------------------------------

def _terms(run: _Run, basis: str, step_timed: bool) -> dict:
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
        if basis == "batch":
            steps = per("decode_steps")
        elif t.get("decode_slots") is not None:
            steps = per("decode_slots")
        else:  # older breakdown: assume full batches
            steps = float(t.get("decode_steps") or 0.0) / max(run.batches, 1)
        out.update(prefill=per("prefill_ms"), decode=per("decode_ms"), decode_steps=steps)
        out["prefill_per_token"] = out["prefill"] / out["prompt_tokens"] if out["prompt_tokens"] else None
        out["decode_per_step"] = out["decode"] / out["decode_steps"] if out["decode_steps"] else None
        out["other"] = out["latency"] - out["preprocess"] - out["prefill"] - out["decode"] - out["postprocess"]
    else:
        out["generate"] = per("generate_ms")
        out["other"] = out["latency"] - out["preprocess"] - out["generate"] - out["postprocess"]
    return out


def _split(x_a: float, x_b: float, y_a: float | None, y_b: float | None) -> tuple[float, float]:
    """Split x_b*y_b - x_a*y_a into a part due to x and a part due to y (midpoint rule, exact)."""
    if y_a is None and y_b is None:
        return 0.0, 0.0
    y_a = y_b if y_a is None else y_a  # one side has no steps: its rate is unknown, not different
    y_b = y_a if y_b is None else y_b
    return (x_b - x_a) * (y_a + y_b) / 2.0, (y_b - y_a) * (x_a + x_b) / 2.0


def _term_deltas(a: dict, b: dict, step_timed: bool) -> dict[str, float]:
    deltas = {"preprocess": b["preprocess"] - a["preprocess"], "postprocess": b["postprocess"] - a["postprocess"],
              "other": b["other"] - a["other"]}
    if step_timed:
        deltas["prefill_tokens"], deltas["prefill_rate"] = _split(
            a["prompt_tokens"], b["prompt_tokens"], a["prefill_per_token"], b["prefill_per_token"])
        deltas["decode_tokens"], deltas["decode_rate"] = _split(
            a["decode_steps"], b["decode_steps"], a["decode_per_step"], b["decode_per_step"])
        # Rounding guard: whatever the split missed (one side without tokens) lands in its rate term.
        deltas["prefill_rate"] += (b["prefill"] - a["prefill"]) - deltas["prefill_tokens"] - deltas["prefill_rate"]
        deltas["decode_rate"] += (b["decode"] - a["decode"]) - deltas["decode_tokens"] - deltas["decode_rate"]
    else:
        deltas["generate"] = b["generate"] - a["generate"]
    return deltas


def _config(fa: dict, fb: dict) -> list[dict]:
    rows = []
    for factor in FACTORS:
        if factor not in fa and factor not in fb:
            continue
        va, vb = fa.get(factor), fb.get(factor)
        rows.append({"factor": factor, "label": FACTORS[factor][0], "a": va, "b": vb,
                     "differs": _norm(va) != _norm(vb)})
    return rows


def _norm(value):
    return json.dumps(value, sort_keys=True, default=str)


def _reasons_for(term: str, differing: dict[str, tuple], delta: float) -> list[str]:
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
    return kept


TERM_CAUSE = {"preprocess": "preprocess", "prefill_rate": "prefill_per_token", "decode_tokens": "generated_tokens",
              "decode_rate": "decode_per_token", "generate": "generate", "postprocess": "postprocess",
              "other": "other"}


def explain_pair(result_a: dict, result_b: dict, samples_a: list[dict] | None = None,
                 samples_b: list[dict] | None = None, basis: str = "auto") -> Explanation:
    """Attribute the latency difference of run B relative to run A (see the module docstring)."""
    ra, rb = _run(result_a, samples_a), _run(result_b, samples_b)
    notes: list[str] = []
    if basis == "auto":
        same_bs = ra.factors.get("batch_size") == rb.factors.get("batch_size")
        basis = "batch" if same_bs else "sample"
        if not same_bs:
            notes.append("batch sizes differ, so latency is compared per sample (batch time / batch size)")
    if basis not in ("batch", "sample"):
        raise HarnessError(f"basis must be auto, batch or sample, not '{basis}'")
    step_timed = ra.step_timed and rb.step_timed
    if not step_timed:
        notes.append("one run has no per-step timing, so prefill and decode are compared as one 'generate' term")
    if ra.approximate or rb.approximate:
        notes.append("a result without a stored breakdown was approximated from its summaries; pass its "
                     "samples.jsonl for exact figures")
    a, b = _terms(ra, basis, step_timed), _terms(rb, basis, step_timed)
    deltas = _term_deltas(a, b, step_timed)
    total = b["latency"] - a["latency"]
    config = _config(ra.factors, rb.factors)
    differing = {c["factor"]: (c["a"], c["b"]) for c in config if c["differs"]}

    groups: dict[str, dict] = {}
    for term, delta in deltas.items():
        if abs(delta) < 1e-9:
            continue
        if term == "prefill_tokens":
            name, reasons = _prompt_cause(a, b), [f for f in ("processor_kwargs", "prompt_suffix") if f in differing]
        elif term in ("other", "decode_tokens"):
            name, reasons = TERM_CAUSE[term], []
        else:
            reasons = _reasons_for(term, differing, delta)
            name = "+".join(reasons) if reasons else TERM_CAUSE[term]
        group = groups.setdefault(name, {"delta": 0.0, "terms": [], "reasons": reasons})
        group["delta"] += delta
        group["terms"].append(term)

    unit = "batch" if basis == "batch" else "sample"
    causes = []
    for name, g in groups.items():
        share = g["delta"] / total if abs(total) > 1e-9 else 0.0
        sentence = _sentence(name, g, share, a, b, ra, rb, differing, unit, samples_a, samples_b)
        causes.append(Cause(name, share, sentence, g["delta"], tuple(g["terms"]), tuple(g["reasons"])))
    causes.sort(key=lambda c: -abs(c.delta_ms))
    if a["latency"] and abs(total) < 0.02 * a["latency"]:
        notes.append("the runs differ by less than 2%, within typical run-to-run noise: the shares are unstable")
    rows = _rows(a, b, deltas, total, ra, rb, step_timed, unit)
    return Explanation(ra.name, rb.name, basis, a["latency"], b["latency"], rows, causes, config,
                       _headline(ra, rb, a, b, total, causes, unit), notes)


def _prompt_cause(a: dict, b: dict) -> str:
    """image_tokens when image tokens make up at least half of the change in prompt length."""
    d_image, d_prompt = b["image_tokens"] - a["image_tokens"], b["prompt_tokens"] - a["prompt_tokens"]
    return "image_tokens" if d_image and abs(d_image) >= 0.5 * abs(d_prompt) else "prompt_tokens"


# --- words -------------------------------------------------------------------------------------------

def _more(delta: float, more: str = "more", fewer: str = "fewer") -> str:
    return more if delta > 0 else fewer


def _ms(value: float) -> str:
    return f"{value:+.1f} ms" if abs(value) < 100 else f"{value:+.0f} ms"


ADAPTER_WORDS = {"none": "no adapter", "adapter": "an unmerged adapter", "merged": "a merged adapter",
                 "full": "full fine-tuned weights"}


def _factor_text(differing: dict, names) -> str:
    parts = []
    for n in names:
        a, b = differing[n]
        if n == "adapter":
            parts.append(f"adapter: {ADAPTER_WORDS.get(b, b)} vs {ADAPTER_WORDS.get(a, a)}")
        else:
            parts.append(f"{n} {_cell(b)} vs {_cell(a)}")
    return ", ".join(parts)


def _example(samples_a, samples_b, delta: float) -> str:
    """The sample whose answer length changed most in the direction of `delta`, quoted from both runs."""
    if not samples_a or not samples_b:
        return ""
    by_id = {r["id"]: r for r in samples_a}
    pairs = [(r, by_id[r["id"]]) for r in samples_b if r["id"] in by_id]
    if not pairs:
        return ""
    sign = 1 if delta > 0 else -1
    changed = sum(1 for rb, ra in pairs if sign * (rb["generated_tokens"] - ra["generated_tokens"]) > 0)
    rb, ra = max(pairs, key=lambda p: sign * (p[0]["generated_tokens"] - p[1]["generated_tokens"]))
    if sign * (rb["generated_tokens"] - ra["generated_tokens"]) <= 0:
        return ""
    return (f" B's answer is {_more(delta, 'longer', 'shorter')} on {changed} of {len(pairs)} samples, e.g. "
            f"{_quote(rb.get('raw_output'))} ({rb['generated_tokens']} tokens) vs {_quote(ra.get('raw_output'))} "
            f"({ra['generated_tokens']}).")


def _quote(text) -> str:
    text = " ".join(str(text or "").split())
    return "`" + (text if len(text) <= 40 else text[:37] + "...").replace("`", "'") + "`"


def _sentence(name, g, share, a, b, ra, rb, differing, unit, samples_a, samples_b) -> str:
    d, pct = g["delta"], f"{_pct(share)} of the difference"
    terms = g["terms"]
    if name == "generated_tokens":
        per_step = ((a["decode_per_step"] or b["decode_per_step"] or 0) + (b["decode_per_step"] or
                                                                          a["decode_per_step"] or 0)) / 2
        text = (f"{_more(d).capitalize()} tokens generated: {b['decode_steps']:.1f} vs {a['decode_steps']:.1f} decode "
                f"steps per {unit} ({b['generated_tokens_per_sample']:.1f} vs {a['generated_tokens_per_sample']:.1f} "
                f"tokens per answer) at {per_step:.2f} ms per step: {_ms(d)}, {pct}.")
        text += _example(samples_a, samples_b, d)
        decoding = [f for f in TOKEN_FACTORS if f in differing]
        if decoding:
            text += f" Decoding settings also differ ({_factor_text(differing, decoding)})."
        return text
    if name in ("image_tokens", "prompt_tokens"):
        return (f"{_more(d).capitalize()} prompt tokens to prefill: {b['prompt_tokens']:.0f} vs "
                f"{a['prompt_tokens']:.0f} per {unit} ({b['image_tokens_per_sample']:.0f} vs "
                f"{a['image_tokens_per_sample']:.0f} image tokens per sample): {_ms(d)}, {pct}."
                + (f" The image processor settings differ ({_factor_text(differing, ['processor_kwargs'])})."
                   if "processor_kwargs" in g["reasons"] else ""))
    parts = []
    for term in terms:
        if term == "decode_rate":
            parts.append(f"{_dir(a['decode_per_step'], b['decode_per_step'])} per-token decode "
                         f"({_f(b['decode_per_step'])} vs {_f(a['decode_per_step'])} ms per step)")
        elif term == "prefill_rate":
            parts.append(f"{_dir(a['prefill_per_token'], b['prefill_per_token'])} prefill per prompt token "
                         f"({b['prefill']:.1f} vs {a['prefill']:.1f} ms for {b['prompt_tokens']:.0f} vs "
                         f"{a['prompt_tokens']:.0f} prompt tokens)")
        elif term in ("generate", "preprocess", "postprocess"):
            label = {"generate": "generate", "preprocess": "preprocessing", "postprocess": "decoding to text"}[term]
            parts.append(f"{_dir(a[term], b[term])} {label} ({b[term]:.1f} vs {a[term]:.1f} ms)")
        elif term == "other":
            parts.append("time outside preprocess, prefill, decode steps and postprocess (end of generate, "
                         f"clock reads): {b['other']:.1f} vs {a['other']:.1f} ms")
    what = "; ".join(parts)
    if name == "other":
        return f"Unexplained remainder, {what}: {_ms(d)}, {pct}."
    if g["reasons"]:
        several = len(g["reasons"]) > 1
        return (f"{_factor_text(differing, g['reasons'])} (B vs A) {'are' if several else 'is'} the recorded "
                f"configuration difference{'s' if several else ''} behind {what}: {_ms(d)}, {pct}."
                + (" Two runs cannot separate them: bench again changing one at a time." if several else ""))
    return (f"{what[0].upper() + what[1:]}, and no recorded setting that acts on it differs (run-to-run noise, "
            f"other load, or an unrecorded cause): {_ms(d)}, {pct}.")


def _dir(va, vb) -> str:
    return "slower" if (vb or 0) > (va or 0) else "faster"


def _f(value) -> str:
    return "–" if value is None else f"{value:.2f}"


def _headline(ra, rb, a, b, total, causes, unit) -> str:
    if abs(total) < 1e-9:
        return f"B ({rb.name}) and A ({ra.name}) take the same time per {unit}."
    ratio = b["latency"] / a["latency"] if a["latency"] else float("inf")
    speed = f"{ratio:.2f}x slower" if total > 0 else f"{1 / ratio:.2f}x faster" if ratio else "faster"
    top = ", ".join(f"{_pct(c.share)} {c.name}" for c in causes[:4])
    return (f"**B ({rb.name}) is {speed} than A ({ra.name})**: {b['latency']:.1f} vs {a['latency']:.1f} ms per "
            f"{unit} ({_ms(total)}). Shares of the difference: {top}.")


def _peak(memory: dict) -> tuple[str | None, float | None]:
    for key in MEMORY_KEYS:
        if memory.get(key) is not None:
            return key, float(memory[key])
    return None, None


def _rows(a, b, deltas, total, ra, rb, step_timed, unit) -> list[dict]:
    def share(*terms):
        d = sum(deltas.get(t, 0.0) for t in terms)
        return d / total if abs(total) > 1e-9 else None

    def row(quantity, va, vb, share_=None):
        delta = None if va is None or vb is None else vb - va
        return {"quantity": quantity, "a": va, "b": vb, "delta": delta, "share": share_}

    per = f"ms per {unit}"
    rows = [row(f"end-to-end latency, {per}", a["latency"], b["latency"], 1.0 if total else None),
            row(f"preprocess, {per}", a["preprocess"], b["preprocess"], share("preprocess"))]
    if step_timed:
        step = "decode ms per step" if unit == "batch" else "decode ms per step and sequence (amortised)"
        rows += [
            row(f"prefill (to first token), {per}", a["prefill"], b["prefill"],
                share("prefill_tokens", "prefill_rate")),
            row(f"  prompt tokens per {unit}", a["prompt_tokens"], b["prompt_tokens"], share("prefill_tokens")),
            row("  image tokens per sample", a["image_tokens_per_sample"], b["image_tokens_per_sample"]),
            row("  prefill ms per 1k prompt tokens", _k(a["prefill_per_token"]), _k(b["prefill_per_token"]),
                share("prefill_rate")),
            row(f"decode, {per}", a["decode"], b["decode"], share("decode_tokens", "decode_rate")),
            row(f"  decode steps per {unit}", a["decode_steps"], b["decode_steps"], share("decode_tokens")),
            row("  generated tokens per answer", a["generated_tokens_per_sample"], b["generated_tokens_per_sample"]),
            row(f"  {step}", a["decode_per_step"], b["decode_per_step"], share("decode_rate")),
        ]
    else:
        rows.append(row(f"generate, {per}", a["generate"], b["generate"], share("generate")))
    rows += [row(f"postprocess, {per}", a["postprocess"], b["postprocess"], share("postprocess")),
             row(f"other (unexplained), {per}", a["other"], b["other"], share("other")),
             row("samples/s", ra.latency.get("samples_per_s"), rb.latency.get("samples_per_s")),
             row("generated tokens/s", ra.latency.get("generated_tokens_per_s"),
                 rb.latency.get("generated_tokens_per_s"))]
    key_a, peak_a = _peak(ra.memory)
    key_b, peak_b = _peak(rb.memory)
    if key_a and key_a == key_b:
        rows.append(row(f"peak memory, MB ({key_a})", peak_a, peak_b))
    return rows


def _k(value):
    return None if value is None else value * 1000.0


def _num(value, signed: bool = False) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return _cell(value)
    magnitude = abs(value)
    fmt = ".0f" if magnitude >= 100 else ".1f" if magnitude >= 10 else ".2f"
    return format(value, ("+" if signed else "") + fmt)


def _pct(value) -> str:
    return "" if value is None else "0%" if abs(value) < 0.005 else f"{value:.0%}"


def _cell(value) -> str:
    if isinstance(value, dict):
        value = ", ".join(f"{k}={v}" for k, v in sorted(value.items())) or "{}"
    text = " ".join(str(value).split())
    return text.replace("|", "\\|")[:80]
