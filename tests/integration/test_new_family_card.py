"""A chat VLM family the repo has never seen, added by one YAML card: fine-tune, bench and leaderboard on its
generic twin with no code change (Qwen2.5-VL: Qwen2_5_VLForConditionalGeneration from the config class
defaults, the Qwen chat template, its special tokens)."""

from __future__ import annotations

import pytest
import yaml

from harness.cli import main
from tests.helpers import finetune_dir, read_results

pytestmark = pytest.mark.integration

QWEN_TEMPLATE = "models/templates/qwen2vl.jinja"  # Qwen2.5-VL-Instruct publishes the same template text

CARD = {
    "name": "newvl",
    "display_name": "NewVL (Qwen2.5-VL twin)",
    "family": "qwen2_5_vl",
    "adapter": "harness.adapters.chat:ChatAdapter",
    "hub_id": "example/NewVL",
    "revision": "0" * 40,
    "dtype": "bfloat16",
    "chat": {"system_prompt": "You are a helpful assistant."},
    "finetune": {"method": "lora", "epochs": 1, "batch_size": 2, "grad_accum": 1, "lr": 1.0e-3,
                 "lora": {"r": 8, "alpha": 16, "target_modules": "all-linear"}},
    "twin": {
        "builder": "harness.adapters.twins.generic:build_twin",
        "model_type": "qwen2_5_vl",
        "chat_template": QWEN_TEMPLATE,
        "special_tokens": ["<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>", "<|image_pad|>",
                           "<|video_pad|>"],
        "tokenizer": {"eos_token": "<|im_end|>", "pad_token": "<|endoftext|>"},
        "token_ids": {"vision_start_token_id": "<|vision_start|>", "vision_end_token_id": "<|vision_end|>"},
        "generation": {"eos_tokens": ["<|im_end|>", "<|endoftext|>"]},
        "processor": {"min_pixels": 3136, "max_pixels": 50176},
        "finetune": {"max_steps": 4},  # the pipeline, not the learning: a few steps
    },
    "supports": {"finetune": ["lora"]},
}


def test_a_new_family_runs_end_to_end_from_its_card(harness_env, config_copy, monkeypatch):
    import shutil

    from tests.conftest import REPO

    (config_copy / "models" / "templates").mkdir(exist_ok=True)
    shutil.copyfile(REPO / QWEN_TEMPLATE, config_copy / QWEN_TEMPLATE)
    (config_copy / "models" / "newvl.yaml").write_text(yaml.safe_dump(CARD, sort_keys=False))
    assert main(["finetune", "newvl", "--preset", "smoke"]) == 0
    assert (finetune_dir(harness_env / "checkpoints", "newvl") / "adapter" / "adapter_config.json").exists()
    assert main(["bench", "--model", "newvl", "--preset", "smoke", "--variant", "base", "--variant", "finetuned",
                 "--limit", "4", "--no-leaderboard"]) == 0
    results = read_results(harness_env / "results")  # the bench reused the fine-tune above (same spec)
    assert {variant for model, variant, _ in results if model == "newvl"} == {"base", "finetuned"}
    page = harness_env / "LEADERBOARD.md"
    assert main(["leaderboard", "--results", str(harness_env / "results"), "--leaderboard", str(page)]) == 0
    assert "newvl" in page.read_text() or "NewVL" in page.read_text()
