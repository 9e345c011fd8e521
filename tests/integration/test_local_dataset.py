"""`--dataset DIR` works on both local PJN_CHARTS layouts: save_to_disk and hub-style parquet."""

from __future__ import annotations

import json

import pytest

from harness.cli import main
from harness.data import write_synthetic
from tests.helpers import read_results

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def layouts(tmp_path_factory):
    import datasets

    root = tmp_path_factory.mktemp("layouts")
    saved = write_synthetic(root / "saved", sizes={"train": 4, "val": 2, "test": 6}, seed=3)
    parquet = root / "parquet"
    (parquet / "data").mkdir(parents=True)
    for split, ds in datasets.load_from_disk(str(saved)).items():
        ds.to_parquet(str(parquet / "data" / f"{split}-00000-of-00001.parquet"))
    return saved, parquet


def test_bench_on_both_layouts_gives_same_data(harness_env, layouts):
    fingerprints = []
    for i, folder in enumerate(layouts):
        results = harness_env / f"results-{i}"
        code = main(["bench", "--model", "qwen2vl", "--preset", "smoke", "--variant", "base", "--dataset",
                     str(folder), "--limit", "4", "--batch-size", "2", "--results", str(results), "--no-leaderboard"])
        assert code == 0
        (result,) = read_results(results).values()
        assert result["num_samples"] == 4
        assert result["spec"]["dataset"] == str(folder)
        fingerprints.append(result["manifest"]["dataset_fingerprint"])
    assert fingerprints[0] == fingerprints[1]


def test_missing_dataset_is_one_line_error(harness_env, capsys):
    code = main(["bench", "--model", "qwen2vl", "--preset", "smoke", "--variant", "base",
                 "--dataset", str(harness_env / "nope"), "--no-leaderboard"])
    err = capsys.readouterr().err
    assert code != 0
    assert "nope" in err and "Traceback" not in err


def test_score_command_rescores_stored_predictions(harness_env, tmp_path, capsys):
    lines = [{"prediction": "14", "references": ["14"]}, {"prediction": "Apple", "references": ["apple", "pear"]},
             {"prediction": "2%", "references": ["2"]}]
    path = tmp_path / "preds.jsonl"
    path.write_text("".join(json.dumps(x) + "\n" for x in lines))
    assert main(["score", str(path), "--per-sample", str(tmp_path / "out.jsonl")]) == 0
    scores = json.loads(capsys.readouterr().out)
    assert set(scores) == {"relaxed_accuracy", "relaxed_accuracy_lenient", "exact_match", "rouge1", "rouge2",
                           "rougeL", "bleu"}
    assert scores["relaxed_accuracy"] == pytest.approx(2 / 3)  # "2%" vs "2" is wrong under the official rule
    assert len((tmp_path / "out.jsonl").read_text().splitlines()) == 3
    path.write_text('{"prediction": "1"}\n')
    assert main(["score", str(path)]) == 2
    assert f"{path}:1" in capsys.readouterr().err
