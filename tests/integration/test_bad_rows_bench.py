"""Images that fail only when decoded (a JPEG body cut behind a good header) are skipped by the bench where
its batch decodes them, in the warm-up batch and in a later one alike, and recorded; the other samples run."""

from __future__ import annotations

import json

import pytest

from harness.cli import main
from tests.bad_inputs import good_rows, jpeg, save, with_images

pytestmark = pytest.mark.integration


def test_cut_images_are_skipped_in_the_warm_up_and_in_a_later_batch(harness_env, capsys):
    cut = jpeg(1)[: len(jpeg(1)) // 2]
    data = save(harness_env / "charts", with_images(good_rows(20), [cut], at=[3, 13]))  # batch 1 (warm-up) and 2
    assert main(["bench", "--model", "qwen2vl", "--preset", "smoke", "--variant", "base", "--batch-size", "8",
                 "--dataset", str(data), "--no-leaderboard"]) == 0, capsys.readouterr().err
    (result_path,) = (harness_env / "results").glob("*/result.json")
    result = json.loads(result_path.read_text())
    assert sorted(s["id"] for s in result["skipped_samples"]) == ["test-13", "test-3"]
    assert all(s["field"] == "image" and "could not be decoded" in s["reason"] for s in result["skipped_samples"])
    ids = [json.loads(line)["id"] for line in (result_path.parent / "samples.jsonl").read_text().splitlines()]
    assert len(ids) == len(set(ids)) == result["num_samples"] == 18 and "test-3" not in ids
    assert result["manifest"]["dataset_rows_asked"] == 20
