"""Per-model specifics on offline twins: what a fine-tune writes, benchmark-only models, study weights.

That every model's fine-tune trains and beats its base is checked once for all models by
test_smoke_pipeline.py (`harness bench --all --preset smoke`).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.cli import main
from tests.helpers import finetune_dir, read_results

pytestmark = pytest.mark.integration


def test_moondream_finetune_is_a_full_remote_code_model(harness_env):
    assert main(["finetune", "moondream", "--preset", "smoke", "--max-steps", "2"]) == 0
    out = finetune_dir(harness_env / "checkpoints", "moondream") / "adapter"
    config = json.loads((out / "config.json").read_text())
    assert config["auto_map"]["AutoModelForCausalLM"] == "moondream.Moondream"
    assert (out / "moondream.py").exists() and not (out / "adapter_config.json").exists()


def test_smolvlm_finetune_is_a_peft_adapter(harness_env):
    assert main(["finetune", "smolvlm", "--preset", "smoke", "--max-steps", "2"]) == 0
    out = finetune_dir(harness_env / "checkpoints", "smolvlm") / "adapter"
    assert (out / "adapter_config.json").exists() and not (out / "config.json").exists()


def test_moondream2025_bench_only(harness_env, capsys):
    assert main(["bench", "--model", "moondream2025", "--preset", "smoke", "--variant", "base", "--batch-size", "1",
                 "--limit", "8", "--no-leaderboard"]) == 0
    (result,) = read_results(harness_env / "results").values()
    assert result["manifest"]["decoding"]["do_sample"] is False
    assert result["manifest"]["batching"].startswith("none")
    assert result["latency"]["prefill_ms"] is not None  # batch size 1: the remote steps fed the timer
    assert main(["finetune", "moondream2025", "--preset", "smoke"]) == 2
    assert "prefix-LM attention" in capsys.readouterr().err


STUDY_SCRIPT = """
import sys
from pathlib import Path
from harness.adapters import open_adapter
from harness.data import load_split, write_synthetic
from harness.plan import facts_for
from harness.registry import load_model
from harness.specs import Decoding
card = load_model(sys.argv[1])
adapter = open_adapter(facts_for(card.name, "smoke"), "twin:" + card.name, None, dtype="float32", device="cpu",
                       cache=Path(sys.argv[2]), adapter_source=card.study["hub_id"],
                       adapter_revision=card.study["revision"], adapter_kind=card.study["kind"])
print("KIND", adapter.request.adapter_kind, type(adapter.model).__name__)
data = load_split(str(write_synthetic(Path(sys.argv[3]), sizes={"train": 0, "val": 0, "test": 2}, seed=2)), "test")
texts, counts = adapter.decode(adapter.generate(adapter.prepare(list(data), ""), Decoding(max_new_tokens=3)))
print("GENERATED", counts)
"""


def _publish(folder: Path, hub_root: Path, repo_id: str, sha: str) -> None:
    """Put a folder where `from_pretrained(repo_id, revision="main")` finds it with the hub offline."""
    import shutil

    repo = hub_root / "hub" / ("models--" + repo_id.replace("/", "--"))
    shutil.copytree(folder, repo / "snapshots" / sha)
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(sha)


@pytest.mark.parametrize("model,kind,loaded", [("smolvlm", "adapter", "PeftModel"), ("moondream", "full", "Moondream")])
def test_study_variant_loads_offline(harness_env, harness_cache, model, kind, loaded):
    """The study checkpoint path: a PEFT adapter on the base (SmolVLM) or complete remote-code weights (Moondream)."""
    import os
    import subprocess
    import sys

    from harness.registry import load_model

    card = load_model(model)
    assert card.study["kind"] == kind
    assert main(["finetune", model, "--preset", "smoke", "--max-steps", "2"]) == 0
    hub = harness_env / "hf"
    _publish(finetune_dir(harness_env / "checkpoints", model) / "adapter", hub, card.study["hub_id"], "1" * 40)
    env = {**os.environ, "HF_HOME": str(hub), "HF_HUB_OFFLINE": "1"}
    done = subprocess.run([sys.executable, "-c", STUDY_SCRIPT, model, str(harness_cache), str(harness_env / "d")],
                          capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert f"KIND {kind} {loaded}" in done.stdout
    assert "GENERATED [" in done.stdout
