"""Shared fine-tune pieces: label masking, LoRA setup, schedules, the recipe loop."""

from harness.train.masking import IGNORE_INDEX, label_answer_suffix, labelled_share

__all__ = ["IGNORE_INDEX", "label_answer_suffix", "labelled_share"]
