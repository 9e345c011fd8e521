"""`harness compare RUN_A RUN_B`: how much do two runs of the same questions differ in their answers?

The parity report for any two stored runs that answered the same samples (`compare.data_key`, the one
comparability rule; hardware may differ: local vs docker, or two backends): the share of identical
predictions by sample id, each metric with its delta and a paired test on the shared samples (exact
McNemar for 0/1 scores such as relaxed accuracy, paired bootstrap clustered by chart for graded ones
such as ROUGE, corpus paired bootstrap for BLEU), the settings that differ (e.g. the backend), and the
first disagreeing samples. Host-side: reads result.json and samples.jsonl, imports no torch.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from harness.analysis.compare import data_key
from harness.errors import HarnessError

__all__ = ["Disagreement", "MetricDelta", "ParityReport", "parity"]

_DATA_KEYS = ("benchmark", "dataset", "dataset_revision", "split", "dataset_fingerprint", "limit")
# Spec fields that name a run rather than configure it.
_BOOKKEEPING = {"config_hash", "run_id", "schema_version", "prompt_name"}


@dataclass(frozen=True)
class Disagreement:
    id: str
    query: str | None
    references: tuple[str, ...]
    a: str | None  # None: the sample is missing from that run
    b: str | None


@dataclass(frozen=True)
class MetricDelta:
    name: str
    a: float | None  # over the shared samples
    b: float | None
    test: dict | None  # PairedTest.to_dict(); None when it could not be computed
    why_untested: str | None = None

    @property
    def delta(self) -> float | None:
        return None if self.a is None or self.b is None else self.b - self.a


@dataclass(frozen=True)
class ParityReport:
    run_ids: tuple[str, str]
    settings: tuple[tuple[str, object, object], ...]  # spec fields that differ: (field, A, B)
    samples: int  # ids in either run
    shared: int  # ids in both
    identical: int  # shared ids with the same prediction
    same_generation: int  # of those, also the same raw output and generated-token count
    same_prompt_tokens: int  # shared ids whose prompts had the same token count (same prompt and image tokens)
    metrics: tuple[MetricDelta, ...]
    disagreements: tuple[Disagreement, ...]
    throughput: tuple[float | None, float | None] = (None, None)
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def share(self) -> float:
        return self.identical / self.samples if self.samples else 1.0

    def to_dict(self) -> dict:
        return {"run_a": self.run_ids[0], "run_b": self.run_ids[1],
                "differs_in": {k: {"a": a, "b": b} for k, a, b in self.settings},
                "samples": self.samples, "shared": self.shared, "identical": self.identical,
                "identical_share": self.share, "same_generation": self.same_generation,
                "same_prompt_tokens": self.same_prompt_tokens,
                "metrics": {m.name: {"a": m.a, "b": m.b, "delta": m.delta, "test": m.test,
                                     "why_untested": m.why_untested} for m in self.metrics},
                "samples_per_s": {"a": self.throughput[0], "b": self.throughput[1]},
                "disagreements": [d.__dict__ | {"references": list(d.references)} for d in self.disagreements],
                "notes": list(self.notes)}

    def lines(self, show: int = 5) -> list[str]:
        a, b = self.run_ids
        out = [f"A: {a}", f"B: {b}"]
        if self.settings:
            out.append("differs in: " + "; ".join(f"{k} {_short(va)} vs {_short(vb)}" for k, va, vb in self.settings))
        out += [f"identical predictions: {self.identical}/{self.samples} samples (share {self.share:.4f})",
                f"identical generations (raw output and generated-token count): {self.same_generation}/"
                f"{self.samples}; same prompt length in tokens: {self.same_prompt_tokens}/{self.shared}"]
        out.append("| metric | A | B | B - A | paired test | p |")
        out.append("|---|---|---|---|---|---|")
        for m in self.metrics:
            test = m.test or {}
            method = test.get("method", m.why_untested or "")
            method = "McNemar" if method.startswith("exact McNemar") else \
                "paired bootstrap" if method.startswith("paired percentile") else method
            if test.get("b01") is not None:
                method += f" (A wrong, B right: {test['b01']}; A right, B wrong: {test['b10']})"
            elif test.get("low") is not None:
                method += f" ({test['confidence']:.0%} CI of B - A: [{test['low']:+.4f}, {test['high']:+.4f}])"
            p = f"{test['p_value']:.4g}" if test.get("p_value") is not None else "n/a"
            delta = f"{m.delta:+.4f}" if m.delta is not None else "n/a"
            out.append(f"| {m.name} | {_num(m.a)} | {_num(m.b)} | {delta} | {method} | {p} |")
        ta, tb = self.throughput
        if ta and tb:
            out.append(f"samples/s end to end: A {ta:.2f}, B {tb:.2f} (B/A {tb / ta:.2f}x)")
        out += [f"note: {n}" for n in self.notes]
        if self.disagreements:
            out.append(f"first {min(show, len(self.disagreements))} of {len(self.disagreements)} disagreeing samples:")
            for d in self.disagreements[:show]:
                out.append(f"  {d.id}: {d.query!r} (references {list(d.references)}): A {_text(d.a)} | B {_text(d.b)}")
        return out


def _num(value) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def _text(prediction: str | None) -> str:
    return "(missing)" if prediction is None else repr(prediction)


def _short(value, width: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= width else text[: width - 3] + "..."


def _differing_settings(spec_a: dict, spec_b: dict, prefix: str = "") -> tuple[tuple[str, object, object], ...]:
    """Spec fields that differ, nested mappings by their own keys (model_facts.environment, not model_facts)."""
    defaults = {"backend": "transformers"}  # specs from before backends existed ran transformers
    out: list = []
    for key in sorted((set(spec_a) | set(spec_b)) - (_BOOKKEEPING if not prefix else set())):
        va, vb = spec_a.get(key, defaults.get(key)), spec_b.get(key, defaults.get(key))
        if va == vb:
            continue
        if isinstance(va, dict) and isinstance(vb, dict) and prefix.count(".") < 1:
            out += _differing_settings(va, vb, f"{prefix}{key}.")
        else:
            out.append((f"{prefix}{key}", va, vb))
    return tuple(out)


def _metric_deltas(names: list[str], rows_a: list[dict], rows_b: list[dict], seed: int) -> tuple[MetricDelta, ...]:
    """The leaderboard's paired tests (leaderboard/stats.py `pair_tests`) on the shared samples."""
    from harness.leaderboard.stats import StatsOptions, pair_tests

    tests = pair_tests(rows_a, rows_b, names, StatsOptions(seed=seed)) if rows_a else {}
    out = []
    for name in names:
        test = tests.get(name)
        if test is None:
            out.append(MetricDelta(name, None, None, None, "no shared samples" if not rows_a else
                                   "not recomputable from the stored samples (unknown metric)"))
        else:
            out.append(MetricDelta(name, test.estimate_a, test.estimate_b, test.to_dict()))
    return tuple(out)


def parity(result_a: dict, samples_a: list[dict], result_b: dict, samples_b: list[dict], *,
           seed: int = 0) -> ParityReport:
    """The parity report of B against A (see the module docstring); refuses runs of other questions."""
    key_a, key_b = data_key(result_a), data_key(result_b)
    if key_a != key_b:
        field_name = next(n for n, x, y in zip(_DATA_KEYS, key_a, key_b) if x != y)
        raise HarnessError(f"{result_a.get('run_id')} and {result_b.get('run_id')} did not answer the same "
                           f"questions: they differ in {field_name} ({key_a[_DATA_KEYS.index(field_name)]!r} vs "
                           f"{key_b[_DATA_KEYS.index(field_name)]!r})")
    by_a = {row["id"]: row for row in samples_a}
    by_b = {row["id"]: row for row in samples_b}
    ids = list(by_a) + [i for i in by_b if i not in by_a]
    shared = [i for i in ids if i in by_a and i in by_b]
    identical = same_generation = same_prompt = 0
    disagreements = []
    for sample_id in ids:
        ra, rb = by_a.get(sample_id), by_b.get(sample_id)
        if ra and rb:
            same_prompt += ra.get("prompt_tokens") == rb.get("prompt_tokens")
            if ra["prediction"] == rb["prediction"]:
                identical += 1
                same_generation += all(ra.get(k) == rb.get(k) for k in ("raw_output", "generated_tokens"))
                continue
        row = ra or rb
        disagreements.append(Disagreement(sample_id, row.get("query"), tuple(row.get("references") or ()),
                                          ra and ra["prediction"], rb and rb["prediction"]))
    names = list(result_a.get("metrics") or {})
    names += [n for n in (result_b.get("metrics") or {}) if n not in names]
    rows_a, rows_b = [by_a[i] for i in shared], [by_b[i] for i in shared]
    metrics = _metric_deltas(names, rows_a, rows_b, seed)
    notes = []
    if len(shared) < len(ids):
        notes.append(f"{len(ids) - len(shared)} sample(s) are in one run only: metrics and tests use the "
                     f"{len(shared)} shared ones")
    backends = {(r.get("spec") or {}).get("backend", "transformers") for r in (result_a, result_b)}
    if len(backends) > 1:
        notes.append("the backends differ: per-batch latency, TTFT and per-token decode time mean different things "
                     "(result latency.not_comparable); end-to-end samples/s is comparable")
    return ParityReport(
        run_ids=(result_a.get("run_id"), result_b.get("run_id")),
        settings=_differing_settings(result_a.get("spec") or {}, result_b.get("spec") or {}),
        samples=len(ids), shared=len(shared), identical=identical, same_generation=same_generation,
        same_prompt_tokens=same_prompt, metrics=metrics, disagreements=tuple(disagreements),
        throughput=tuple((r.get("latency") or {}).get("samples_per_s") for r in (result_a, result_b)),
        notes=tuple(notes))
