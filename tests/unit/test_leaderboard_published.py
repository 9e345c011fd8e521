"""The leaderboard shows the cards' published scores in their own table, for their benchmark only, and the
per-subset scores of a card with `subsets:` (constructed results: no model)."""

from __future__ import annotations

import json

from harness.leaderboard import write_leaderboard
from tests.unit.test_leaderboard_fixtures import make_samples, write_run

FULL = {"card": "chartqa_full", "columns": {}, "label_shape": "list",
        "subsets": {"column": "human_or_machine", "names": {"0": "human", "1": "augmented"},
                    "order": ["augmented", "human"]}}


def _run(root, benchmark: str, prompt: str = "vlmevalkit"):
    folder = write_run(root, "qwen2vl", "base", make_samples(right={0, 3, 6}))
    path = folder / "result.json"
    result = json.loads(path.read_text())
    result["spec"].update(benchmark=benchmark, prompt_name=prompt,
                          data_format=FULL if benchmark == "chartqa_full" else None)
    if benchmark == "chartqa_full":
        result["subset_metrics"] = {"human": {"n": 10, "relaxed_accuracy": 0.1},
                                    "augmented": {"n": 14, "relaxed_accuracy": 0.5}}
    path.write_text(json.dumps(result))


def _section(text: str, title: str) -> str:
    return text.split(f"## {title}", 1)[1].split("\n## ", 1)[0] if f"## {title}" in text else ""


def test_published_scores_stand_beside_ours_in_their_own_table(harness_env, tmp_path):
    _run(tmp_path / "res", "chartqa_full", prompt="lmms_eval")
    text = write_leaderboard([tmp_path / "res"], tmp_path / "LEADERBOARD.md", n_resamples=50).read_text()
    published = _section(text, "Published scores")
    assert "| qwen2vl | chartqa\\_full | overall | relaxed\\_accuracy | 73.5 | Qwen2-VL-2B-Instruct model card |" \
        in published
    assert "| 72.32 | lmms-eval | batch 1 |" in published
    assert "| augmented | relaxed\\_accuracy | 89.12 | lmms-eval | batch 1 | 50.0 (base, n=14, prompt lmms\\_eval) |" \
        in published  # ours: the subset's stored score, labelled as ours
    assert "| human | relaxed\\_accuracy | 55.52 | lmms-eval | batch 1 | 10.0 (base, n=10," in published
    results = _section(text, "Results")
    assert "73.5" not in results and "72.32" not in results and "lmms\\_eval" in results  # the prompt is shown
    subsets = _section(text, "Scores by subset")
    assert "| overall | augmented | human |" in subsets  # the paper's order, from the card
    assert "| 12.5 (n=24) | 50.0 (n=14) | 10.0 (n=10) |" in subsets


def test_published_scores_only_for_the_benchmark_they_apply_to(harness_env, tmp_path):
    _run(tmp_path / "res", "chartqa")  # PJN_CHARTS: 500 human questions, not the full test the numbers are for
    text = write_leaderboard([tmp_path / "res"], tmp_path / "LEADERBOARD.md", n_resamples=50).read_text()
    assert "## Published scores" not in text and "73.5" not in text
    assert "## Scores by subset" not in text
