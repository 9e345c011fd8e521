"""Measurement on the smoke preset: every result carries the latency and memory fields, fine-tune
records carry memory and step times, a merged adapter is recorded, and `explain` runs on real twins.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from harness.cli import main
from harness.registry import load_model
from tests.helpers import execute_spec, finetune_sets, models_where, plan_ft, plan_runs, read_results, read_samples

pytestmark = pytest.mark.integration

# One card per adapter class: the fields come from the adapter's generate + the shared bench loop, so more
# cards on the same adapter add CI time and no coverage.
MODELS = models_where(one_per="adapter")
SUMMARY_KEYS = {"mean", "p50", "p90", "p95", "min", "max", "n"}
LATENCY_SUMMARIES = ("latency_ms", "batch_latency_ms", "preprocess_ms", "generate_ms", "postprocess_ms", "prefill_ms",
                     "ttft_ms", "decode_ms", "decode_ms_per_token", "decode_steps", "generated_tokens", "image_tokens",
                     "prompt_tokens")
SAMPLE_KEYS = {"id", "image_id", "query", "references", "prediction", "raw_output", "meta", "scores",
               "generated_tokens", "image_tokens", "prompt_tokens", "latency_ms", "batch_index", "batch_size",
               "batch_steps", "preprocess_ms", "generate_ms", "postprocess_ms", "prefill_ms", "ttft_ms", "decode_ms",
               "decode_ms_per_token", "step_ms"}
SPEED_KEYS = {"dtype", "param_dtype", "attn_implementation", "quantization", "adapter", "adapter_merged", "num_beams",
              "max_new_tokens", "min_new_tokens", "do_sample", "batch_size", "image_tokens_per_sample", "device",
              "hardware", "torch", "transformers", "peft"}


@pytest.mark.parametrize("model", MODELS)
def test_smoke_result_carries_every_latency_and_memory_field(harness_env, model):
    code = main(["bench", "--model", model, "--preset", "smoke", "--variant", "base", "--limit", "6",
                 "--batch-size", "4", "--no-leaderboard"])
    assert code == 0
    result = read_results(harness_env / "results")[(model, "base", 4)]
    lat = result["latency"]
    for key in LATENCY_SUMMARIES:
        if key in lat["unavailable"]:  # only where the model cannot stamp steps (no batched generation)
            assert lat[key] is None and load_model(model).supports.get("batching", "").startswith("none")
            continue
        assert lat[key] is not None and set(lat[key]) == SUMMARY_KEYS, f"{model}: latency.{key}"
    assert lat["samples_per_s"] > 0 and lat["generated_tokens_per_s"] > 0
    assert lat["batch_size"] == 4 and lat["batches"] == 2 and lat["timed_samples"] == 6  # warm-up excluded
    assert lat["clock"] == "perf_counter" and "synchronised" in lat["how"]
    totals = lat["breakdown"]["totals"]
    step_timed = lat["breakdown"]["step_timed"]
    assert step_timed is not bool(lat["unavailable"])
    parts = ("preprocess_ms", "prefill_ms", "decode_ms", "generate_tail_ms", "postprocess_ms", "overhead_ms")
    if not step_timed:
        parts = ("preprocess_ms", "generate_ms", "postprocess_ms", "overhead_ms")
    assert sum(totals[k] for k in parts) == pytest.approx(totals["end_to_end_ms"], rel=1e-6)

    memory = result["memory"]
    assert memory["rss_peak_mb"] > 0 and memory["available"] == ["rss_peak_mb"]
    assert set(memory["unavailable"]) == {"torch_max_allocated_mb", "torch_max_reserved_mb", "nvml_peak_used_mb"}

    assert SPEED_KEYS <= set(result["speed_factors"])
    factors = result["speed_factors"]
    assert factors["dtype"] == "float32" and factors["param_dtype"] == "float32" and factors["adapter"] == "none"
    assert factors["image_tokens_per_sample"] > 0 and factors["num_beams"] == 1
    assert result["manifest"]["packages"]["torch"] and result["manifest"]["attn_implementation_per_module"]

    rows = read_samples(result["_dir"])
    assert len(rows) == 6
    for row in rows:
        assert SAMPLE_KEYS <= set(row), f"{model}: missing {SAMPLE_KEYS - set(row)}"
        assert len(row["step_ms"]) == row["batch_steps"]
        if step_timed:
            assert row["batch_steps"] >= row["generated_tokens"] >= 1
            assert row["ttft_ms"] == pytest.approx(row["preprocess_ms"] + row["prefill_ms"])


def test_finetune_record_merge_and_explain(harness_env):
    """A 2-step fine-tune records memory and step times; --merge-adapter is recorded; explain runs."""
    from harness.plan import resolve_paths
    from harness.registry import load_preset

    paths = resolve_paths(load_preset("smoke"))
    short = finetune_sets(max_steps=2, limit=16)
    fspec = plan_ft("qwen2vl", preset="smoke", sets=short)
    record = execute_spec(fspec, paths)
    assert record["memory"]["rss_peak_mb"] > 0 and "available" in record["memory"]
    assert set(record["step_time_ms"]) == SUMMARY_KEYS
    assert record["environment"]["lora"]["r"] and record["environment"]["param_dtype"] == "float32"

    base, tuned = plan_runs(["qwen2vl"], ["base", "finetuned"], preset="smoke", limit=4, batch_sizes=[2], sets=short)
    assert tuned.needs == fspec.adapter_id
    execute_spec(base, paths)
    merged = execute_spec(replace(tuned, merge_adapter=True), paths)
    assert merged["speed_factors"]["adapter"] == "merged" and merged["speed_factors"]["adapter_merged"] is True
    assert merged["manifest"]["lora"]["r"] and merged["merge_ms"] > 0
    unmerged = execute_spec(tuned, paths)
    assert unmerged["speed_factors"]["adapter"] == "adapter" and unmerged["merge_ms"] is None

    results = Path(paths.results)
    assert main(["explain", base.run_id, tuned.run_id, "--results", str(results), "--json"]) == 0


def test_explain_on_twins_sees_the_beams(harness_env, capsys):
    """Greedy vs 4 beams on the same twin, same token count: the difference is put on num_beams."""
    from harness.plan import resolve_paths
    from harness.registry import load_preset

    paths = resolve_paths(load_preset("smoke"))
    (spec,) = plan_runs(["qwen2vl"], preset="smoke", limit=4, batch_sizes=[1])
    fixed = {**spec.decoding, "max_new_tokens": 6, "min_new_tokens": 6}
    greedy = replace(spec, decoding=fixed)
    beams = replace(spec, decoding={**fixed, "num_beams": 4})
    execute_spec(greedy, paths)
    execute_spec(beams, paths)
    assert main(["explain", greedy.run_id, beams.run_id, "--results", str(paths.results), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [c["factor"] for c in data["config"] if c["differs"]] == ["num_beams"]
    assert abs(sum(c["share"] for c in data["causes"]) - 1.0) < 1e-6
    if data["delta_ms"] > 0:  # 4 beams do 4x the work per step; on a very loaded box the gap can vanish
        top = max(data["causes"], key=lambda c: c["delta_ms"])
        assert top["name"] == "num_beams", data["causes"]


def test_realsize_benchmark_runs_tiny(tmp_path):
    """benchmarks/perf/realsize.py --tiny: every real architecture builds from its shipped config and reports."""
    import subprocess
    import sys

    out = tmp_path / "figures.json"
    script = Path(__file__).resolve().parents[2] / "benchmarks" / "perf" / "realsize.py"
    proc = subprocess.run([sys.executable, str(script), "--tiny", "--new-tokens", "4", "--repeats", "1",
                           "--batch-sizes", "1,2", "--threads", "1", "--json", str(out)],
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-2000:]
    figures = json.loads(out.read_text())
    # Every card whose architecture the script builds at real size (its BUILDERS, keyed by card family).
    assert sorted(figures["models"]) == models_where(lambda card: card.family in ("qwen2vl", "idefics3", "moondream2"))
    for name, model in figures["models"].items():
        assert [r["batch_size"] for r in model["runs"]] == [1, 2], name
        for run in model["runs"]:
            assert run["prefill_ms"] > 0 and run["decode_ms_per_token"] > 0 and run["image_tokens"] > 0
            assert run["memory"]["rss_peak_mb"] > 0
    assert figures["models"]["smolvlm"]["runs"][0]["image_tokens"] == 405  # 2x2 tiles + global, 81 each
    assert figures["models"]["moondream"]["runs"][0]["image_tokens"] == 729
    # An 850x600 chart takes the 2024 encoder's crop path: 756x756, one global + 4 crop passes of the tower.
    for run in figures["models"]["moondream"]["runs"]:
        assert (run["vision_image"], run["vision_passes"]) == ("756x756", 5)


def test_realsize_moondream_small_chart_is_one_vision_pass():
    """Under 512 px on the longest side (a 422x359 PJN chart) the 2024 encoder runs the tower once."""
    import importlib.util

    script = Path(__file__).resolve().parents[2] / "benchmarks" / "perf" / "realsize.py"
    module_spec = importlib.util.spec_from_file_location("realsize", script)
    realsize = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(realsize)
    import torch

    spec = realsize.load_spec("moondream2", tiny=True)
    spec["inputs"].update(image_width=422, image_height=359)
    model, make, ids = realsize.build_moondream(spec, "cpu", torch.float32, "sdpa")
    row = realsize.measure(model.eval(), make, ids, 1, 2, 1, "cpu")
    assert (row["vision_image"], row["vision_passes"], row["image_tokens"]) == ("378x378", 1, 729)
