"""Constructed result folders for the leaderboard tests (no model, no torch): known answers on purpose.

Also imported by tests/integration/test_leaderboard_html.py. The one test here checks the builder.
"""

from __future__ import annotations

import json
from pathlib import Path

from PIL import Image

from harness.metrics import metric_info, score
from harness.specs import SCHEMA_VERSION

QUESTION_TYPES = ("value", "largest", "count")
HOSTILE = [
    "a | b || c",
    "`code` and ``double``",
    "<script>alert('x')</script>",
    "line one\nline two\r\nthree",
    "<img src=x onerror=alert(1)>",
    "[link](javascript:alert(1)) **bold** _em_ \\| #h",
]


def make_samples(n_charts: int = 8, per_chart: int = 3, right: set[int] | None = None,
                 hostile: bool = False, sentences: bool = False) -> list[dict]:
    """Questions on charts; sample i is answered correctly when i is in `right`.

    `sentences`: multi-word answers, so that corpus BLEU (4-grams) is not zero for everyone.
    """
    right = set(range(0, n_charts * per_chart, 3)) if right is None else right
    rows = []
    for i in range(n_charts * per_chart):
        numeric = i % 2 == 0
        reference = str(10 + i) if numeric else f"label{i}"
        if sentences:
            reference = f"the bar for item {i} shows {reference} units in total"
        if i in right:
            prediction = reference
        elif hostile:
            prediction = HOSTILE[i % len(HOSTILE)]
        else:
            prediction = str(99 + i) if numeric else "other"
            if sentences:
                prediction = f"a line chart of something else entirely {prediction}"
        rows.append({
            "id": f"s{i:03d}", "image_id": f"chart{i // per_chart}", "query": f"What is shown for item {i}?",
            "references": [reference], "prediction": prediction, "raw_output": prediction,
            "meta": {"question_type": QUESTION_TYPES[i % per_chart], "chart_type": "bar"},
            "generated_tokens": 1 + len(prediction.split()), "prompt_tokens": 40, "image_tokens": 64,
        })
    scored = score([r["prediction"] for r in rows], [r["references"] for r in rows])
    for row, values in zip(rows, scored.per_sample):
        row["scores"] = values
    return rows


def _summary(values: list[float]) -> dict:
    v = sorted(values)
    return {"mean": sum(v) / len(v), "p50": v[len(v) // 2], "p90": v[int(0.9 * (len(v) - 1))],
            "p95": v[int(0.95 * (len(v) - 1))], "min": v[0], "max": v[-1], "n": len(v)}


def write_run(root: Path, model: str, variant: str, samples: list[dict], batch_size: int = 1,
              hardware: str = "CPU (2 cores)", ms: float = 100.0, preset: str | None = None,
              thumbs: int = 6, schema_version: int = SCHEMA_VERSION, gpu: bool = False) -> Path:
    run_id = f"{model}-{variant}-bs{batch_size}"
    folder = Path(root) / run_id
    (folder / "thumbs").mkdir(parents=True, exist_ok=True)
    latencies = [ms * batch_size * (1 + 0.1 * (i % 5)) for i in range(len(samples))]
    with open(folder / "samples.jsonl", "w") as fh:
        for i, (row, lat) in enumerate(zip(samples, latencies)):
            fh.write(json.dumps({**row, "batch_index": i // batch_size, "batch_size": batch_size,
                                 "latency_ms": lat, "prefill_ms": lat / 2, "decode_ms_per_token": lat / 10}) + "\n")
    for row in samples[:thumbs]:
        colour = (40 * (int(row["id"][1:]) % 6), 120, 200)
        Image.new("RGB", (24, 16), colour).save(folder / "thumbs" / f"{row['id']}.png")
    scored = score([r["prediction"] for r in samples], [r["references"] for r in samples])
    memory = ({"torch_max_allocated_mb": 4000.0 + 10 * batch_size, "rss_peak_mb": 900.0} if gpu
              else {"rss_peak_mb": 900.0 + 10 * batch_size})
    result = {
        "schema_version": schema_version, "run_id": run_id, "num_samples": len(samples),
        "spec": {"model": model, "variant": variant, "batch_size": batch_size, "benchmark": "chartqa",
                 "benchmark_version": "1", "dataset": "synthetic:test", "dataset_revision": None, "split": "test",
                 "limit": None, "preset": preset, "decoding": {"max_new_tokens": 16, "do_sample": False},
                 "prompt_suffix": "\nAnswer briefly.", "model_id": f"twin:{model}", "model_revision": None,
                 "adapter_id": None if variant == "base" else f"{model}-ft"},
        "metrics": scored.aggregates, "metric_info": metric_info(),
        "latency": {"latency_ms": _summary(latencies), "prefill_ms": _summary([x / 2 for x in latencies]),
                    "decode_ms_per_token": _summary([x / 10 for x in latencies]),
                    "generated_tokens": _summary([3.0] * len(samples)),
                    "samples_per_s": 1000.0 / ms * (1 + 0.5 * (batch_size > 1))},
        "memory": memory,
        "manifest": {"hardware": hardware, "harness_version": "0.1.0", "harness_git_sha": "abc123",
                     "dataset_fingerprint": "feedbeef" * 8, "packages": {"torch": "2.4.0"}},
        "finished_at": "2025-01-02T03:04:05Z",
        # What the bench records about speed (harness/engine/factors.py), as `harness explain` reads it.
        "speed_factors": {"model_id": f"twin:{model}", "variant": variant, "dtype": "float32",
                          "adapter": "none" if variant == "base" else "adapter", "adapter_merged": False,
                          "num_beams": 1, "max_new_tokens": 16, "do_sample": False, "batch_size": batch_size,
                          "prompt_suffix": "\nAnswer briefly.", "device": "cuda" if gpu else "cpu",
                          "hardware": hardware, "torch": "2.4.0"},
    }
    if variant == "finetuned":
        result["finetune"] = {
            "adapter_id": f"{model}-ft", "method": "lora", "trainable_params": 1000, "total_params": 50000,
            "steps": 20, "epochs": 2, "batch_size": 4, "grad_accum": 1, "train_samples": 40, "wall_time_s": 12.5,
            "samples_per_s": 6.4, "memory": memory, "device": "cpu", "first_loss": 5.0, "final_loss": 1.0,
            "loss_per_step": [{"step": s, "loss": 5.0 - 4.0 * s / 20, "lr": 1e-3} for s in range(1, 21)],
        }
    (folder / "result.json").write_text(json.dumps(result, indent=1))
    return folder


def write_results(root: Path, hardware: str = "CPU (2 cores)", models=("alpha", "beta"), batch_sizes=(1, 4),
                  hostile: bool = False, gpu: bool = False, preset: str | None = None) -> Path:
    """Base (a third right) and fine-tuned (two thirds right) runs per model and batch size."""
    n = 24
    for k, model in enumerate(models):
        base = make_samples(right=set(range(0, n, 3)), hostile=hostile)
        tuned = make_samples(right={i for i in range(n) if i % 3 != 2}, hostile=hostile)
        for bs in batch_sizes:
            write_run(root, model, "base", base, bs, hardware, ms=80.0 * (k + 1), gpu=gpu, preset=preset)
            write_run(root, model, "finetuned", tuned, bs, hardware, ms=95.0 * (k + 1), gpu=gpu, preset=preset)
    return Path(root)


def test_fixture_scores_match_the_intended_accuracy(tmp_path):
    write_results(tmp_path, models=("alpha",), batch_sizes=(1,))
    base = json.loads((tmp_path / "alpha-base-bs1" / "result.json").read_text())
    tuned = json.loads((tmp_path / "alpha-finetuned-bs1" / "result.json").read_text())
    assert abs(base["metrics"]["relaxed_accuracy"] - 8 / 24) < 1e-9
    assert abs(tuned["metrics"]["relaxed_accuracy"] - 16 / 24) < 1e-9
