"""Confidence intervals per entry and paired tests per base/fine-tuned pair, from stored samples.

Intervals are percentile bootstraps over samples, clustered by chart image when several questions
share one (ChartQA). Accuracy-type metrics (0/1 per sample) are compared with the exact McNemar
test; ROUGE with a paired bootstrap of per-sample scores; BLEU, a corpus metric, with a paired
bootstrap that recomputes corpus BLEU on each resample. Every number records its seed and resamples.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

from harness.errors import HarnessError
from harness.metrics import answer_type, get_metric
from harness.stats import (
    CI,
    PairedTest,
    bootstrap_ci,
    bootstrap_ci_corpus,
    mcnemar,
    paired_bootstrap,
    paired_bootstrap_corpus,
)

__all__ = [
    "ACCURACY_METRICS",
    "StatsOptions",
    "align",
    "clusters_for",
    "entry_cis",
    "group_accuracy",
    "group_field",
    "pair_tests",
]

ACCURACY_METRICS = frozenset({"relaxed_accuracy", "relaxed_accuracy_lenient", "exact_match"})


@dataclass(frozen=True)
class StatsOptions:
    n_resamples: int = 2000
    confidence: float = 0.95
    seed: int = 0

    def kwargs(self) -> dict:
        return {"n_resamples": self.n_resamples, "confidence": self.confidence, "seed": self.seed}


def clusters_for(samples: Sequence[dict]) -> list | None:
    """Chart image per sample when some chart carries several questions; else None (plain bootstrap)."""
    ids = [s.get("image_id") for s in samples]
    if any(i is None for i in ids) or len(set(ids)) == len(ids):
        return None
    return ids


def _per_sample(samples: Sequence[dict], name: str) -> list[float] | None:
    values = [(s.get("scores") or {}).get(name) for s in samples]
    return None if any(v is None for v in values) else [float(v) for v in values]


def _indexed(samples: Sequence[dict], name: str):
    """indices -> metric over those samples, recomputed from predictions (corpus metrics such as BLEU)."""
    metric = get_metric(name)
    return metric.indexed([s["prediction"] for s in samples], [s["references"] for s in samples],
                          _per_sample(samples, name))


def _known(name: str) -> bool:
    try:
        get_metric(name)
    except HarnessError:
        return False
    return True


def entry_cis(samples: Sequence[dict], metrics: Sequence[str], options: StatsOptions) -> dict[str, CI]:
    """A CI per metric (on the metric's own scale), skipping metrics that cannot be recomputed."""
    if not samples:
        return {}
    clusters = clusters_for(samples)
    out: dict[str, CI] = {}
    for name in metrics:
        values = _per_sample(samples, name)
        if values is not None:
            out[name] = bootstrap_ci(values, clusters=clusters, **options.kwargs())
        elif _known(name):
            out[name] = bootstrap_ci_corpus(len(samples), _indexed(samples, name), clusters=clusters,
                                            **options.kwargs())
    return out


def align(samples_a: Sequence[dict], samples_b: Sequence[dict]) -> tuple[list[dict], list[dict]]:
    """The samples both runs answered, in A's order, so the pairing is per question."""
    by_id = {s.get("id"): s for s in samples_b}
    pairs = [(s, by_id[s.get("id")]) for s in samples_a if s.get("id") in by_id]
    return [a for a, _ in pairs], [b for _, b in pairs]


def _binary(values: Sequence[float]) -> bool:
    return all(v in (0.0, 1.0) for v in values)


def pair_tests(
    samples_a: Sequence[dict], samples_b: Sequence[dict], metrics: Sequence[str], options: StatsOptions
) -> dict[str, PairedTest]:
    """B minus A per metric on the shared samples: McNemar for accuracy, paired bootstrap otherwise."""
    a, b = align(samples_a, samples_b)
    if not a:
        return {}
    clusters = clusters_for(a)
    out: dict[str, PairedTest] = {}
    for name in metrics:
        va, vb = _per_sample(a, name), _per_sample(b, name)
        if va is not None and vb is not None:
            boot = paired_bootstrap(va, vb, clusters=clusters, **options.kwargs())
            if name in ACCURACY_METRICS and _binary(va) and _binary(vb):
                exact = mcnemar(va, vb)
                out[name] = dataclasses.replace(
                    exact, low=boot.low, high=boot.high, confidence=boot.confidence,
                    n_resamples=boot.n_resamples, seed=boot.seed, n_clusters=boot.n_clusters,
                    method=f"{exact.method}; interval of the difference: {boot.method.split(';')[0]}"
                    + (", clustered by image" if boot.n_clusters else ""),
                )
            else:
                out[name] = boot
        elif _known(name):
            fa, fb = _indexed(a, name), _indexed(b, name)
            out[name] = paired_bootstrap_corpus(len(a), lambda idx, fa=fa, fb=fb: (fa(idx), fb(idx)),
                                                clusters=clusters, **options.kwargs())
    return out


def group_field(samples: Sequence[dict]) -> str:
    """`question_type` when every sample has one (synthetic charts), else the answer type."""
    if samples and all((s.get("meta") or {}).get("question_type") for s in samples):
        return "question_type"
    return "answer_type"


def group_accuracy(
    samples: Sequence[dict], field: str, metric: str, options: StatsOptions
) -> dict[str, CI]:
    """The metric's CI within each group (question type, or numeric vs text answers)."""
    groups: dict[str, list[dict]] = {}
    for s in samples:
        key = s["meta"]["question_type"] if field == "question_type" else answer_type(s.get("references") or [])
        groups.setdefault(str(key), []).append(s)
    out = {}
    for key in sorted(groups):
        values = _per_sample(groups[key], metric)
        if values is not None:
            out[key] = bootstrap_ci(values, clusters=clusters_for(groups[key]), **options.kwargs())
    return out
