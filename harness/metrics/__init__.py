"""Metrics: one `Metric` record per metric in one registry, and the `score`/`score_file` entry points.

Importing this package registers the built-in metrics, in this order: relaxed_accuracy,
relaxed_accuracy_lenient, exact_match (accuracy.py), rouge1, rouge2, rougeL, bleu (overlap.py).
A plug-in metric is one `register_metric(Metric(...))` call.
"""

from harness.metrics.accuracy import answer_type, lenient_correctness, relaxed_correctness, to_float
from harness.metrics.base import METRICS, SCALES, Metric, get_metric, metric_names, register_metric
from harness.metrics.overlap import (
    bleu_from_statistics,
    bleu_score,
    bleu_statistics,
    reference_streams,
    rouge_f,
)
from harness.metrics.scoring import DEFAULT_METRICS, ScoreResult, metric_info, score, score_file

__all__ = [
    "DEFAULT_METRICS",
    "METRICS",
    "SCALES",
    "Metric",
    "ScoreResult",
    "answer_type",
    "bleu_from_statistics",
    "bleu_score",
    "bleu_statistics",
    "get_metric",
    "lenient_correctness",
    "metric_info",
    "metric_names",
    "reference_streams",
    "register_metric",
    "relaxed_correctness",
    "rouge_f",
    "score",
    "score_file",
    "to_float",
]
