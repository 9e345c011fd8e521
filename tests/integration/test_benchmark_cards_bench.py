"""A benchmark card is enough for new data: an image folder with differently named columns, and the full
ChartQA test's synthetic stand-in with both subsets, end to end on a twin, leaderboard included."""

from __future__ import annotations

import pytest

from harness.cli import main
from tests.helpers import read_results, read_samples
from tests.unit.test_benchmark_cards import CARD, write_image_folder

pytestmark = pytest.mark.integration

MODEL = "qwen2vl"


def test_image_folder_with_metadata_csv_benchmarks_through_a_card(harness_env, config_copy, tmp_path):
    (config_copy / "benchmarks" / "mycharts.yaml").write_text(CARD)
    data = write_image_folder(tmp_path / "mycharts", splits=("test",), n=8)
    results = tmp_path / "res"
    code = main(["bench", "--model", MODEL, "--preset", "smoke", "--benchmark", "mycharts", "--dataset", str(data),
                 "--limit", "8", "--variant", "base", "--batch-size", "4", "--results", str(results),
                 "--no-leaderboard"])
    assert code == 0
    (result,) = read_results(results).values()
    assert result["num_samples"] == 8
    assert result["spec"]["prompt_name"] == "short" and result["spec"]["prompt_suffix"] == "\nOne word."
    samples = read_samples(result["_dir"])
    assert [s["references"] for s in samples] == [[str(i)] for i in range(8)]  # string answers, as lists
    assert {s["meta"]["source"] for s in samples} == {"h", "m"}
    assert {k: v["n"] for k, v in result["subset_metrics"].items()} == {"human": 4, "machine": 4}


def test_full_chartqa_stand_in_reports_subsets_and_published_scores(harness_env, tmp_path):
    results, page = tmp_path / "res", tmp_path / "lb"
    page.mkdir()
    code = main(["bench", "--model", MODEL, "--preset", "smoke", "--benchmark", "chartqa_full", "--limit", "8",
                 "--variant", "base", "--batch-size", "4", "--results", str(results), "--leaderboard", str(page)])
    assert code == 0
    (result,) = read_results(results).values()
    subsets = result["subset_metrics"]
    assert set(subsets) == {"augmented", "human"} and all(v["n"] > 0 for v in subsets.values())
    assert sum(v["n"] for v in subsets.values()) == result["num_samples"] == 8
    for name, got in subsets.items():  # each subset scored from its own samples
        rows = [s for s in read_samples(result["_dir"])
                if {0: "human", 1: "augmented"}[s["meta"]["human_or_machine"]] == name]
        assert got["relaxed_accuracy"] == pytest.approx(sum(s["scores"]["relaxed_accuracy"] for s in rows) / len(rows))
    text = (page / "LEADERBOARD.md").read_text()
    assert "## Scores by subset" in text and "| overall | augmented | human |" in text
    published = text.split("## Published scores", 1)[1].split("\n## ", 1)[0]
    assert "| qwen2vl | chartqa\\_full | augmented | relaxed\\_accuracy | 89.12 | lmms-eval |" in published
    assert "| 73.5 | Qwen2-VL-2B-Instruct model card |" in published
    results_table = text.split("## Results", 1)[1].split("\n## ", 1)[0]
    assert "72.32" not in results_table and "73.5" not in results_table
