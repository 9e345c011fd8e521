"""score(), the registry, metric_info() and score_file() with its one-line errors."""

import json

import numpy as np
import pytest

from harness.errors import HarnessError
from harness.metrics import (
    DEFAULT_METRICS,
    METRICS,
    Metric,
    get_metric,
    metric_info,
    register_metric,
    score,
    score_file,
)


def test_registry_order_and_unknown_metric():
    assert tuple(METRICS)[: len(DEFAULT_METRICS)] == DEFAULT_METRICS
    with pytest.raises(HarnessError, match="unknown metric 'nope'; known metrics: relaxed_accuracy, "):
        get_metric("nope")


def test_plugin_metric_registers_and_scores():
    metric = Metric(
        name="length_test",
        higher_is_better=False,
        version="1",
        scale="fraction",
        description="1 if prediction is empty",
        per_sample_fn=lambda p, refs: float(p == ""),
    )
    register_metric(metric)
    try:
        with pytest.raises(ValueError, match="already registered"):
            register_metric(metric)
        result = score(["", "x"], [["a"], ["b"]], metrics=["length_test", "exact_match"])
        assert result.aggregates == {"length_test": 0.5, "exact_match": 0.0}
        assert metric_info(["length_test"])["length_test"]["higher_is_better"] is False
    finally:
        METRICS.unregister("length_test")


def test_metric_info_fields():
    info = metric_info()
    assert list(info) == list(DEFAULT_METRICS)
    for entry in info.values():
        assert set(entry) == {"higher_is_better", "version", "scale", "description"}
        assert entry["higher_is_better"] is True
    assert info["bleu"]["scale"] == "0-100"
    assert info["rougeL"]["scale"] == "fraction"
    assert "no stemming" in info["rouge1"]["description"]


def test_score_validates_inputs():
    with pytest.raises(HarnessError, match="2 predictions but 1 reference lists"):
        score(["a", "b"], [["a"]])
    with pytest.raises(HarnessError, match="no samples"):
        score([], [])
    with pytest.raises(HarnessError, match="sample 0: field 'references' must be a list of strings"):
        score(["a"], ["a"])
    with pytest.raises(HarnessError, match="sample 1: field 'references' must not be empty"):
        score(["a", "b"], [["a"], []])
    with pytest.raises(HarnessError, match="sample 0: field 'prediction' must be a string"):
        score([None], [["a"]])
    with pytest.raises(HarnessError, match="metrics must be a list"):
        score(["a"], [["a"]], metrics="bleu")


def test_score_accepts_tuples():
    result = score(("Yes",), (("yes", "no"),), metrics=["exact_match"])
    assert result.aggregates == {"exact_match": 1.0}
    assert result.per_sample == [{"exact_match": 1.0}]


def _write(path, lines):
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_score_file_happy_path(tmp_path):
    rows = [
        {"id": "q1", "prediction": "2008", "references": ["2010"]},
        {"id": "q2", "prediction": "Yes", "references": ["yes"]},
        {"id": "q3", "prediction": "1,000", "references": ["1000", "one thousand"]},
    ]
    path = _write(tmp_path / "preds.jsonl", [json.dumps(r) for r in rows] + [""])
    out = tmp_path / "sub" / "scored.jsonl"
    aggregates = score_file(path, per_sample_out=out)
    assert list(aggregates) == list(DEFAULT_METRICS)
    assert aggregates["relaxed_accuracy"] == pytest.approx(2 / 3)
    assert aggregates["relaxed_accuracy_lenient"] == pytest.approx(2 / 3)
    assert aggregates["exact_match"] == pytest.approx(1 / 3)
    json.dumps(aggregates)
    written = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [w["id"] for w in written] == ["q1", "q2", "q3"]
    assert written[0]["relaxed_accuracy"] == 1.0 and written[0]["relaxed_accuracy_lenient"] == 0.0
    assert written[2]["references"] == ["1000", "one thousand"]
    assert "bleu" not in written[0] and "rougeL" in written[0]
    # only this file is left in the output folder (atomic write cleaned up)
    assert [p.name for p in out.parent.iterdir()] == ["scored.jsonl"]


def test_score_file_metric_subset(tmp_path):
    path = _write(tmp_path / "p.jsonl", [json.dumps({"prediction": "a", "references": ["a"]})])
    assert score_file(path, metrics=["exact_match", "bleu"]) == {
        "exact_match": 1.0,
        "bleu": pytest.approx(0.0),
    }


GOOD = json.dumps({"prediction": "a", "references": ["a"]})


@pytest.mark.parametrize(
    ("bad_line", "message"),
    [
        ('{"prediction": "a", "references": ["a"]', "invalid JSON"),
        ('{"prediction": "a"}', "missing field 'references'"),
        ('{"references": ["a"]}', "missing field 'prediction'"),
        ('{"prediction": "a", "references": "a"}', "field 'references' must be a list of strings"),
        ('{"prediction": "a", "references": [1]}', "field 'references' must be a list of strings"),
        ('{"prediction": "a", "references": []}', "field 'references' must not be empty"),
        ('{"prediction": null, "references": ["a"]}', "field 'prediction' must be a string"),
        ('["a", ["a"]]', "line must be a JSON object"),
    ],
)
def test_score_file_bad_line_names_file_and_line(tmp_path, bad_line, message):
    path = _write(tmp_path / "bad.jsonl", [GOOD, "", bad_line, GOOD])
    with pytest.raises(HarnessError) as info:
        score_file(path)
    text = str(info.value)
    assert text.startswith(f"{path}:3: ")
    assert message in text
    assert "\n" not in text


def test_score_file_missing_and_empty(tmp_path):
    with pytest.raises(HarnessError, match="no such file"):
        score_file(tmp_path / "absent.jsonl")
    with pytest.raises(HarnessError, match="no samples"):
        score_file(_write(tmp_path / "empty.jsonl", [""]))


def test_indexed_recomputes_on_resampled_indices():
    preds, refs = ["a", "b", "c"], [["a"], ["x"], ["c"]]
    compute = get_metric("exact_match").indexed(preds, refs)
    assert compute(np.array([0, 1, 1, 1])) == 0.25
    assert compute(np.arange(3)) == get_metric("exact_match").aggregate(preds, refs)
    with pytest.raises(HarnessError, match="no samples"):
        get_metric("bleu").aggregate([], [])
