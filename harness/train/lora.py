"""Trainable parameters: LoRA (once, never double-wrapped) or full fine-tuning of one module."""

from __future__ import annotations

from typing import TYPE_CHECKING

from harness.errors import HarnessError
from harness.specs import FinetuneRecipe

if TYPE_CHECKING:
    from harness.adapters.protocol import TrainingAdapter

__all__ = ["count_parameters", "make_trainable"]


def make_trainable(adapter: TrainingAdapter, recipe: FinetuneRecipe):
    """Prepare `adapter.model` for training per the recipe; returns the module whose params train."""
    method = recipe.method
    module = adapter.trainable_module()
    if method == "full":
        for p in adapter.model.parameters():
            p.requires_grad_(False)
        for p in module.parameters():
            p.requires_grad_(True)
        return module
    if method not in ("lora", "qlora"):
        raise HarnessError(f"unknown fine-tune method '{method}' (use lora, qlora or full)")
    from peft import LoraConfig, PeftModel, get_peft_model

    if isinstance(adapter.model, PeftModel):
        raise HarnessError("the model is already wrapped with PEFT; refusing to wrap it twice")
    if method == "qlora":
        from peft import prepare_model_for_kbit_training

        adapter.model = prepare_model_for_kbit_training(
            adapter.model, use_gradient_checkpointing=bool(recipe.gradient_checkpointing)
        )
    lora = recipe.lora
    targets = lora.target_modules
    config = LoraConfig(
        r=int(lora.r),
        lora_alpha=int(lora.alpha),
        lora_dropout=float(lora.dropout),
        target_modules=(list(targets) if isinstance(targets, tuple) else targets) or adapter.default_lora_targets(),
        init_lora_weights=lora.init,
        task_type="CAUSAL_LM",
    )
    adapter.model = get_peft_model(adapter.model, config)
    return adapter.model


def count_parameters(model) -> tuple[int, int]:
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    return trainable, total
