"""The analysis in words: one sentence per cause, the headline, the figures table, and Markdown."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from harness.analysis.decompose import RunFigures
from harness.analysis.explanation import Explanation, Row
from harness.trackers.memory import peak_memory

if TYPE_CHECKING:
    from harness.analysis.attribute import Group

__all__ = ["Context", "figure_rows", "headline", "markdown", "sentence"]

# Decoding settings that change how many tokens are generated: named in the generated_tokens sentence.
TOKEN_FACTORS = ("num_beams", "max_new_tokens", "min_new_tokens", "do_sample", "temperature", "top_p", "top_k",
                 "repetition_penalty", "prompt_suffix")
ADAPTER_WORDS = {"none": "no adapter", "adapter": "an unmerged adapter", "merged": "a merged adapter",
                 "full": "full fine-tuned weights"}


@dataclass(frozen=True)
class Context:
    """What every sentence may quote: both runs' per-unit terms, figures, differing factors, samples."""

    a: dict
    b: dict
    ra: RunFigures
    rb: RunFigures
    differing: dict[str, tuple]
    unit: str
    samples_a: list[dict] | None
    samples_b: list[dict] | None


def _more(delta: float, more: str = "more", fewer: str = "fewer") -> str:
    return more if delta > 0 else fewer


def _ms(value: float) -> str:
    return f"{value:+.1f} ms" if abs(value) < 100 else f"{value:+.0f} ms"


def _factor_text(differing: dict, names) -> str:
    parts = []
    for n in names:
        a, b = differing[n]
        if n == "adapter":
            parts.append(f"adapter: {ADAPTER_WORDS.get(b, b)} vs {ADAPTER_WORDS.get(a, a)}")
        else:
            parts.append(f"{n} {cell(b)} vs {cell(a)}")
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


def _term_text(term: str, a: dict, b: dict) -> str:
    if term == "decode_rate":
        return (f"{_dir(a['decode_per_step'], b['decode_per_step'])} per-token decode "
                f"({_f(b['decode_per_step'])} vs {_f(a['decode_per_step'])} ms per step)")
    if term == "prefill_rate":
        return (f"{_dir(a['prefill_per_token'], b['prefill_per_token'])} prefill per prompt token "
                f"({b['prefill']:.1f} vs {a['prefill']:.1f} ms for {b['prompt_tokens']:.0f} vs "
                f"{a['prompt_tokens']:.0f} prompt tokens)")
    if term in ("generate", "preprocess", "postprocess"):
        label = {"generate": "generate", "preprocess": "preprocessing", "postprocess": "decoding to text"}[term]
        return f"{_dir(a[term], b[term])} {label} ({b[term]:.1f} vs {a[term]:.1f} ms)"
    if term == "other":
        return ("time outside preprocess, prefill, decode steps and postprocess (end of generate, "
                f"clock reads): {b['other']:.1f} vs {a['other']:.1f} ms")
    return ""


def sentence(g: Group, share: float, ctx: Context) -> str:
    """One cause in words: what changed, by how much, and the recorded setting behind it."""
    a, b, differing, unit = ctx.a, ctx.b, ctx.differing, ctx.unit
    d, pct = g.delta, f"{pct_text(share)} of the difference"
    if g.name == "generated_tokens":
        per_step = ((a["decode_per_step"] or b["decode_per_step"] or 0) + (b["decode_per_step"] or
                                                                          a["decode_per_step"] or 0)) / 2
        text = (f"{_more(d).capitalize()} tokens generated: {b['decode_steps']:.1f} vs {a['decode_steps']:.1f} decode "
                f"steps per {unit} ({b['generated_tokens_per_sample']:.1f} vs {a['generated_tokens_per_sample']:.1f} "
                f"tokens per answer) at {per_step:.2f} ms per step: {_ms(d)}, {pct}.")
        text += _example(ctx.samples_a, ctx.samples_b, d)
        decoding = [f for f in TOKEN_FACTORS if f in differing]
        if decoding:
            text += f" Decoding settings also differ ({_factor_text(differing, decoding)})."
        return text
    if g.name in ("image_tokens", "prompt_tokens"):
        return (f"{_more(d).capitalize()} prompt tokens to prefill: {b['prompt_tokens']:.0f} vs "
                f"{a['prompt_tokens']:.0f} per {unit} ({b['image_tokens_per_sample']:.0f} vs "
                f"{a['image_tokens_per_sample']:.0f} image tokens per sample): {_ms(d)}, {pct}."
                + (f" The image processor settings differ ({_factor_text(differing, ['processor_kwargs'])})."
                   if "processor_kwargs" in g.reasons else ""))
    what = "; ".join(text for text in (_term_text(t, a, b) for t in g.terms) if text)
    if g.name == "other":
        return f"Unexplained remainder, {what}: {_ms(d)}, {pct}."
    if g.reasons:
        several = len(g.reasons) > 1
        return (f"{_factor_text(differing, g.reasons)} (B vs A) {'are' if several else 'is'} the recorded "
                f"configuration difference{'s' if several else ''} behind {what}: {_ms(d)}, {pct}."
                + (" Two runs cannot separate them: bench again changing one at a time." if several else ""))
    return (f"{what[0].upper() + what[1:]}, and no recorded setting that acts on it differs (run-to-run noise, "
            f"other load, or an unrecorded cause): {_ms(d)}, {pct}.")


def _dir(va, vb) -> str:
    return "slower" if (vb or 0) > (va or 0) else "faster"


def _f(value) -> str:
    return "–" if value is None else f"{value:.2f}"


def headline(ra: RunFigures, rb: RunFigures, a: dict, b: dict, total: float, causes, unit: str) -> str:
    if abs(total) < 1e-9:
        return f"B ({rb.name}) and A ({ra.name}) take the same time per {unit}."
    ratio = b["latency"] / a["latency"] if a["latency"] else float("inf")
    speed = f"{ratio:.2f}x slower" if total > 0 else f"{1 / ratio:.2f}x faster" if ratio else "faster"
    top = ", ".join(f"{pct_text(c.share)} {c.name}" for c in causes[:4])
    return (f"**B ({rb.name}) is {speed} than A ({ra.name})**: {b['latency']:.1f} vs {a['latency']:.1f} ms per "
            f"{unit} ({_ms(total)}). Shares of the difference: {top}.")


def figure_rows(a, b, deltas, total, ra: RunFigures, rb: RunFigures, step_timed: bool, unit: str) -> list[Row]:
    """The figures table: each term of both runs, B - A and its share of the difference."""
    def share(*terms):
        d = sum(deltas.get(t, 0.0) for t in terms)
        return d / total if abs(total) > 1e-9 else None

    def row(quantity, va, vb, share_=None) -> Row:
        return Row(quantity, va, vb, None if va is None or vb is None else vb - va, share_)

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
    key_a, peak_a = peak_memory(ra.memory)
    key_b, peak_b = peak_memory(rb.memory)
    if key_a and key_a == key_b:  # only the same measure side by side
        rows.append(row(f"peak memory, MB ({key_a})", peak_a, peak_b))
    return rows


def _k(value):
    return None if value is None else value * 1000.0


def number(value, signed: bool = False) -> str:
    """A figure with as many decimals as its size needs; '–' for none."""
    if value is None:
        return "–"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return cell(value)
    magnitude = abs(value)
    fmt = ".0f" if magnitude >= 100 else ".1f" if magnitude >= 10 else ".2f"
    return format(value, ("+" if signed else "") + fmt)


def pct_text(value) -> str:
    return "" if value is None else "0%" if abs(value) < 0.005 else f"{value:.0%}"


def setting_text(value) -> str:
    """A setting's value on one line (a dict as k=v pairs)."""
    if isinstance(value, dict):
        value = ", ".join(f"{k}={v}" for k, v in sorted(value.items())) or "{}"
    return " ".join(str(value).split())


def cell(value) -> str:
    return setting_text(value).replace("|", "\\|")[:80]


def markdown(ex: Explanation, title: str | None = None) -> str:
    out = [f"### {title}", ""] if title else []
    out += [ex.headline, "", "| quantity | A | B | B − A | share of difference |", "|---|---|---|---|---|"]
    for row in ex.rows:
        out.append(f"| {row.quantity} | {number(row.a)} | {number(row.b)} | {number(row.delta, True)} "
                   f"| {pct_text(row.share)} |")
    if ex.differing:
        out += ["", "| setting that differs | A | B |", "|---|---|---|"]
        out += [f"| {s.factor} | {cell(s.a)} | {cell(s.b)} |" for s in ex.differing]
    out += [""] + [f"- {c.sentence}" for c in ex.causes]
    out += [f"- Note: {n}" for n in ex.notes]
    return "\n".join(out) + "\n"
