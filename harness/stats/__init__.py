"""Statistics for the leaderboard: bootstrap confidence intervals and paired tests (pure numpy).

Each result records how it was computed (method, resamples, confidence, seed) and serialises with
`to_dict()`. Per-sample metrics use `bootstrap_ci` / `paired_bootstrap` / `mcnemar`; corpus metrics
such as BLEU use the `_corpus` variants with a function that recomputes the metric on sample indices
(`harness.metrics.Metric.indexed` builds one).
"""

from harness.stats.bootstrap import (
    bootstrap_ci,
    bootstrap_ci_corpus,
    paired_bootstrap,
    paired_bootstrap_corpus,
)
from harness.stats.mcnemar import binomial_two_sided_p, mcnemar
from harness.stats.results import CI, PairedTest

__all__ = [
    "CI",
    "PairedTest",
    "binomial_two_sided_p",
    "bootstrap_ci",
    "bootstrap_ci_corpus",
    "mcnemar",
    "paired_bootstrap",
    "paired_bootstrap_corpus",
]
