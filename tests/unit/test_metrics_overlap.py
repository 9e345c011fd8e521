"""ROUGE and BLEU agree with rouge-score and sacreBLEU called directly."""

import numpy as np
import pytest
import sacrebleu
from rouge_score import rouge_scorer

from harness.metrics import bleu_from_statistics, bleu_score, bleu_statistics, get_metric, score

PREDICTIONS = ["the cat sat on the mat", "hello world there", "a b c d e", ""]
REFERENCES = [
    ["the cat sat on a mat", "a cat is on the mat"],
    ["hello world"],
    ["a b c d e f", "x", "a b c"],
    ["something"],
]


@pytest.mark.parametrize("rouge_type", ["rouge1", "rouge2", "rougeL"])
def test_rouge_matches_rouge_score(rouge_type):
    scorer = rouge_scorer.RougeScorer([rouge_type], use_stemmer=False)
    expected = [
        max(scorer.score(r, p)[rouge_type].fmeasure for r in refs)
        for p, refs in zip(PREDICTIONS, REFERENCES, strict=True)
    ]
    metric = get_metric(rouge_type)
    got = [metric.per_sample(p, refs) for p, refs in zip(PREDICTIONS, REFERENCES, strict=True)]
    assert got == pytest.approx(expected)
    assert metric.aggregate(PREDICTIONS, REFERENCES) == pytest.approx(np.mean(expected))
    assert 0.0 < metric.aggregate(PREDICTIONS, REFERENCES) <= 1.0


def test_rouge_no_stemming():
    assert get_metric("rouge1").per_sample("running", ["run"]) == 0.0


def test_bleu_matches_sacrebleu_same_reference_count():
    preds = ["the cat sat on the mat", "hello big world"]
    refs = [["the cat sat on a mat", "a cat on the mat"], ["hello world", "hello big world"]]
    expected = sacrebleu.corpus_bleu(preds, [[r[0] for r in refs], [r[1] for r in refs]]).score
    assert bleu_score(preds, refs) == pytest.approx(expected)
    assert get_metric("bleu").aggregate(preds, refs) == pytest.approx(expected)


def test_bleu_ragged_references_padding_is_neutral():
    # Repeating a sample's own reference changes neither n-gram clipping nor the closest reference
    # length, so padding with copies must give the same corpus BLEU as the None padding we use.
    width = max(len(r) for r in REFERENCES)
    padded = [r + [r[0]] * (width - len(r)) for r in REFERENCES]
    streams = [[r[j] for r in padded] for j in range(width)]
    expected = sacrebleu.corpus_bleu(PREDICTIONS, streams).score
    got = bleu_score(PREDICTIONS, REFERENCES)
    assert got == pytest.approx(expected)
    assert got > 0
    # Padding with "" would add a zero-length reference and change the brevity penalty.
    empty_padded = [[r[j] if j < len(r) else "" for r in REFERENCES] for j in range(width)]
    assert sacrebleu.corpus_bleu(PREDICTIONS, empty_padded).score != pytest.approx(got)


def test_bleu_statistics_reaggregate_exactly():
    stats = bleu_statistics(PREDICTIONS, REFERENCES)
    assert stats.shape == (4, 10)
    assert bleu_from_statistics(stats.sum(axis=0)) == pytest.approx(bleu_score(PREDICTIONS, REFERENCES))
    idx = np.array([0, 0, 2, 1, 2])
    compute = get_metric("bleu").indexed(PREDICTIONS, REFERENCES)
    expected = bleu_score([PREDICTIONS[i] for i in idx], [REFERENCES[i] for i in idx])
    assert compute(idx) == pytest.approx(expected)


def test_empty_predictions_do_not_crash():
    result = score(["", "  "], [["a"], ["", "b"]])
    assert result.aggregates["bleu"] == 0.0
    assert result.aggregates["rouge1"] == 0.0
    assert set(result.per_sample[0]) == {
        "relaxed_accuracy",
        "relaxed_accuracy_lenient",
        "exact_match",
        "rouge1",
        "rouge2",
        "rougeL",
    }
    # an empty prediction against an empty reference is an exact match
    assert result.per_sample[1]["exact_match"] == 1.0
