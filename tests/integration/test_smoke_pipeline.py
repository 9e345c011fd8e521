"""The smoke pipeline end to end: fine-tune every twin, bench base and fine-tuned, render.

This is the honest test that training trains: the synthetic charts have exact labels, so a few
seconds of CPU fine-tuning must beat the untrained twin.
"""

from __future__ import annotations

import json
import os

import pytest

from harness.cli import main
from tests.helpers import can_finetune, finetune_dir, models_where, read_results, read_samples

pytestmark = pytest.mark.integration

# Every card, by the spec (`bench --all --preset smoke` covers every card): each new card adds its
# fine-tune and bench runs to this module's time.
MODELS = models_where()
TUNABLE = models_where(can_finetune)
SECRET = "hf_smoke_secret_must_never_be_written"


@pytest.fixture(scope="module")
def smoke_run(harness_cache, tmp_path_factory):
    """One `harness bench --all --preset smoke` for the whole module, in a scratch folder."""
    root = tmp_path_factory.mktemp("smoke")
    env = {
        "HARNESS_CACHE_DIR": str(harness_cache),
        "HARNESS_RESULTS_DIR": str(root / "results"),
        "HARNESS_CHECKPOINTS_DIR": str(root / "checkpoints"),
        "HF_TOKEN": SECRET,
    }
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        code = main(["bench", "--all", "--preset", "smoke", "--leaderboard", str(root / "LEADERBOARD.md")])
        yield code, root
    finally:
        for key, value in old.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def test_bench_all_succeeds_and_renders(smoke_run):
    code, root = smoke_run
    assert code == 0
    page = (root / "LEADERBOARD.md").read_text()
    assert page.lstrip("> *").startswith("SMOKE PRESET")  # the warning comes first
    results = read_results(root / "results")
    expected = {(m, "base") for m in MODELS} | {(m, "finetuned") for m in TUNABLE}
    assert {(m, v) for m, v, _ in results} == expected
    for model in MODELS:
        assert f"| {model}" in page


def test_token_never_reaches_files(smoke_run):
    _, root = smoke_run
    leaked = [p for p in root.rglob("*") if p.is_file() and SECRET.encode() in p.read_bytes()]
    assert not leaked


@pytest.mark.parametrize("model", TUNABLE)
def test_finetune_trains(smoke_run, model):
    _, root = smoke_run
    record = json.loads((finetune_dir(root / "checkpoints", model) / "training.json").read_text())
    losses = [step["loss"] for step in record["loss_per_step"]]
    tail = losses[-max(3, len(losses) // 5):]
    assert sum(tail) / len(tail) < 0.7 * losses[0], f"{model}: loss did not fall enough: {losses[0]} -> {tail}"
    # Loss only on answer tokens: a small share of the sequence, never zero.
    assert 0 < record["labelled_share_mean"] < 0.3


@pytest.mark.parametrize("model", TUNABLE)
def test_finetuned_beats_base(smoke_run, model):
    _, root = smoke_run
    results = read_results(root / "results")
    base, tuned = results[(model, "base", 8)], results[(model, "finetuned", 8)]
    # A random twin cannot read chart text: what it can learn is the answer format and per-question-type
    # priors (short answers that stop at the end token, some exactly right). ROUGE-L lands at 0.02-0.16
    # on the 64 synthetic test questions against ~0 for the untrained twin, so the bar is: strictly
    # better on ROUGE-L and exact match, never worse on relaxed accuracy, and answers that stop.
    b, t = base["metrics"], tuned["metrics"]
    assert t["rougeL"] > b["rougeL"] and t["exact_match"] > b["exact_match"], (model, b, t)
    assert t["relaxed_accuracy"] >= b["relaxed_accuracy"]
    assert tuned["latency"]["generated_tokens"]["mean"] <= 6 < base["latency"]["generated_tokens"]["mean"]
    assert all(row["prediction"] == row["prediction"].strip() for row in read_samples(tuned["_dir"]))
    # Same decoding for both variants, recorded in the result.
    assert tuned["spec"]["decoding"] == base["spec"]["decoding"]
    assert tuned["manifest"]["decoding"] == base["manifest"]["decoding"]
    assert tuned["finetune"]["adapter_id"] == tuned["spec"]["adapter_id"]


def test_result_explains_itself(smoke_run):
    _, root = smoke_run
    result = next(iter(read_results(root / "results").values()))
    manifest = result["manifest"]
    for key in ("harness_version", "python", "packages", "device", "dataset_fingerprint", "dtype", "batch_size",
                "seed", "decoding", "attn_implementation", "adapter_merged"):
        assert key in manifest, key
    assert manifest["packages"]["torch"] and manifest["packages"]["transformers"]
    assert result["num_samples"] == len(read_samples(result["_dir"]))
    for key in ("latency_ms", "prefill_ms", "decode_ms_per_token", "generated_tokens", "samples_per_s"):
        assert result["latency"][key] is not None, key
    assert result["memory"]["rss_peak_mb"] > 0


def test_rerun_skips_and_resume_loses_nothing(smoke_run, capsys):
    _, root = smoke_run
    model = MODELS[0]
    results = read_results(root / "results")
    run = results[(model, "base", 8)]
    run_dir = root / "results" / os.path.basename(run["_dir"])
    before = read_samples(run_dir)
    # Simulate a run killed mid-way: half the samples, a torn last line, no result.json.
    lines = (run_dir / "samples.jsonl").read_text().splitlines(keepends=True)
    (run_dir / "samples.jsonl").write_text("".join(lines[: len(lines) // 2]) + lines[len(lines) // 2][:25])
    (run_dir / "result.json").unlink()
    assert main(["bench", "--model", model, "--variant", "base", "--preset", "smoke", "--no-leaderboard"]) == 0
    after = read_samples(run_dir)
    assert sorted(r["id"] for r in after) == sorted(r["id"] for r in before)
    assert [r["prediction"] for r in sorted(after, key=lambda r: r["id"])] == [
        r["prediction"] for r in sorted(before, key=lambda r: r["id"])
    ]
    resumed = json.loads((run_dir / "result.json").read_text())
    assert resumed["resumed_samples"] == len(lines) // 2
    assert resumed["metrics"] == run["metrics"]
    capsys.readouterr()
    assert main(["bench", "--model", model, "--variant", "base", "--preset", "smoke", "--no-leaderboard"]) == 0
    assert "already finished, skipped" in capsys.readouterr().err
