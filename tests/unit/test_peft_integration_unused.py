"""transformers 5.24's own PEFT integration asks for peft >= 0.22, which PyPI does not offer (0.21.2 is the newest):
the harness must never go through it. It trains with peft's get_peft_model and loads adapters with PeftModel /
load_adapter directly, so transformers' version check is never reached - this test makes that a rule.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import finetune_sets, plan_ft, twin_adapter


@pytest.fixture
def no_transformers_peft(monkeypatch):
    import transformers.integrations.peft as integration

    def refuse(min_version):
        raise AssertionError(f"went through transformers' PEFT integration (needs peft >= {min_version})")

    monkeypatch.setattr(integration, "check_peft_version", refuse)


def test_lora_train_save_load_and_merge_bypass_transformers_peft(harness_env, harness_cache, no_transformers_peft):
    from harness.execute import execute

    spec = plan_ft("qwen2vl", preset="smoke", sets=finetune_sets(max_steps=1, limit=4, batch_size=2))
    folder = harness_env / "ft"
    execute(spec, folder, checkpoints=harness_env, cache=Path(harness_cache))
    tuned = twin_adapter("qwen2vl", harness_cache, adapter_path=str(folder / "adapter"))
    from peft import PeftModel

    assert isinstance(tuned.model, PeftModel)
    tuned.merge_adapter()
    assert tuned.adapter_merged and not isinstance(tuned.model, PeftModel)
