"""N-gram overlap metrics the original study reported: ROUGE-1/2/L (rouge-score) and corpus BLEU (sacreBLEU).

The libraries are called directly (never `evaluate.load`, which fetches scripts from the hub) and
imported lazily, so reading the registry stays cheap.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import cache, lru_cache
from importlib.metadata import PackageNotFoundError, version

import numpy as np

from harness.errors import HarnessError
from harness.metrics.base import Metric, register_metric

__all__ = [
    "rouge_f",
    "reference_streams",
    "bleu_score",
    "bleu_statistics",
    "bleu_from_statistics",
    "ROUGE1",
    "ROUGE2",
    "ROUGEL",
    "BLEU",
]


def _version(package: str) -> str:
    try:
        return version(package)
    except PackageNotFoundError:  # pragma: no cover - the package is a declared dependency
        return "?"


# --- ROUGE -----------------------------------------------------------------------------------------


@cache
def _rouge_scorer(rouge_type: str):
    from rouge_score import rouge_scorer

    return rouge_scorer.RougeScorer([rouge_type], use_stemmer=False)


def rouge_f(rouge_type: str, prediction: str, references: Sequence[str]) -> float:
    """rouge-score F-measure of `prediction`, maximum over `references`."""
    scorer = _rouge_scorer(rouge_type)
    return max(scorer.score(ref, prediction)[rouge_type].fmeasure for ref in references)


def _rouge_metric(rouge_type: str, label: str) -> Metric:
    return Metric(
        name=rouge_type,
        higher_is_better=True,
        version="1",
        scale="fraction",
        description=(
            f"rouge-score {_version('rouge-score')} {label} F-measure, default tokenizer, no stemming, "
            "max over references, mean over samples"
        ),
        per_sample_fn=lambda prediction, references: rouge_f(rouge_type, prediction, references),
    )


# --- BLEU ------------------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def _bleu():
    from sacrebleu.metrics import BLEU as SacreBLEU

    return SacreBLEU()  # defaults: tokenize 13a, smooth exp, case-sensitive


def reference_streams(references_list: Sequence[Sequence[str]]) -> list[list[str | None]]:
    """Per-sample reference lists -> sacreBLEU reference streams (one per reference position).

    Samples with fewer references are padded with None, which sacreBLEU 2.x drops per segment. An
    empty string would not be dropped: it is a real zero-length reference and changes the brevity
    penalty (closest reference length).
    """
    if len(references_list) == 0:
        raise HarnessError("no samples to score")
    width = max(len(refs) for refs in references_list)
    return [[refs[j] if j < len(refs) else None for refs in references_list] for j in range(width)]


def bleu_score(predictions: Sequence[str], references_list: Sequence[Sequence[str]]) -> float:
    """sacreBLEU corpus BLEU (0-100), multi-reference."""
    return float(_bleu().corpus_score(list(predictions), reference_streams(references_list)).score)


def bleu_statistics(predictions: Sequence[str], references_list: Sequence[Sequence[str]]) -> np.ndarray:
    """Per-sample sufficient statistics, shape (n, 10): hyp_len, ref_len, 4 matches, 4 totals.

    Summing rows over any multiset of samples and calling `bleu_from_statistics` gives that subset's
    corpus BLEU exactly; sacreBLEU's own significance tests work the same way.
    """
    stats = _bleu()._extract_corpus_statistics(list(predictions), reference_streams(references_list))
    return np.asarray(stats, dtype=np.int64).reshape(len(predictions), -1)


def bleu_from_statistics(summed: Sequence[int] | np.ndarray) -> float:
    return float(_bleu()._compute_score_from_stats([int(x) for x in summed]).score)


def _bleu_aggregate(predictions, references_list, _per_sample_values=None) -> float:
    return bleu_score(predictions, references_list)


def _bleu_indexed(predictions, references_list) -> Callable[[np.ndarray], float]:
    stats = bleu_statistics(predictions, references_list)
    return lambda idx: bleu_from_statistics(stats[np.asarray(idx, dtype=np.intp)].sum(axis=0))


ROUGE1 = register_metric(_rouge_metric("rouge1", "ROUGE-1"))
ROUGE2 = register_metric(_rouge_metric("rouge2", "ROUGE-2"))
ROUGEL = register_metric(_rouge_metric("rougeL", "ROUGE-L (longest common subsequence)"))
BLEU = register_metric(
    Metric(
        name="bleu",
        higher_is_better=True,
        version="1",
        scale="0-100",
        description=(
            f"sacreBLEU {_version('sacrebleu')} corpus BLEU, tokenize 13a, smooth exp, case-sensitive, "
            "multi-reference (samples with fewer references padded with None); corpus-level only"
        ),
        aggregate_fn=_bleu_aggregate,
        indexed_fn=_bleu_indexed,
    )
)
