"""Label masking shared by every recipe: loss on the answer and end-of-turn tokens only."""

from __future__ import annotations

from collections.abc import Sequence

from harness.errors import HarnessError

__all__ = ["IGNORE_INDEX", "label_answer_suffix", "labelled_share"]

IGNORE_INDEX = -100


def label_answer_suffix(input_ids, attention_mask, suffixes: Sequence[Sequence[int]], never_label: Sequence[int],
                        example_ids: Sequence[str]):
    """Labels that copy `input_ids` on each row's answer suffix and are IGNORE_INDEX elsewhere.

    The suffix (answer + end-of-turn, tokenized alone) must be the last real tokens of its row
    (right padding); if tokenization in context differs we fail rather than label the wrong span.
    """
    import torch

    labels = torch.full_like(input_ids, IGNORE_INDEX)
    forbidden = set(int(t) for t in never_label)
    for row, suffix in enumerate(suffixes):
        real = attention_mask[row].nonzero().flatten()
        if len(real) == 0 or not suffix:
            raise HarnessError(f"example {example_ids[row]}: empty prompt or answer")
        end = int(real[-1]) + 1
        start = end - len(suffix)
        if input_ids[row, start:end].tolist() != list(suffix):
            raise HarnessError(
                f"example {example_ids[row]}: the answer tokenizes differently inside the prompt; "
                "cannot place labels safely"
            )
        if forbidden.intersection(input_ids[row, start:end].tolist()):
            raise HarnessError(f"example {example_ids[row]}: image tokens inside the answer span")
        labels[row, start:end] = input_ids[row, start:end]
    return labels


def labelled_share(labels) -> float:
    """Share of positions that carry a label (for tests and the training record)."""
    total = labels.numel()
    return float((labels != IGNORE_INDEX).sum()) / total if total else 0.0
