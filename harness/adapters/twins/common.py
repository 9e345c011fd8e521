"""Shared twin pieces: a byte-level BPE trained in a second, and a trained-scale output head."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterable
from pathlib import Path

__all__ = ["TOY_TEXT_SIZE", "give_head_trained_scale", "train_byte_bpe"]

# One toy size for every twin's language model: seconds to train on a CPU, same shape for all families.
# head_dim 32: vLLM's CPU attention kernels reject 16, and a twin should run on any backend.
TOY_TEXT_SIZE = {"hidden_size": 128, "intermediate_size": 256, "num_hidden_layers": 2, "num_attention_heads": 4}

# A random output head (std 0.02) after a final RMSNorm caps every logit near 1, so no adapter can
# make any token likely. Trained heads have far larger norms; x10 restores that headroom.
HEAD_SCALE = 10.0


def train_byte_bpe(corpus: Iterable[str], vocab_size: int = 600) -> tuple[dict[str, int], list[tuple[str, str]]]:
    """Train a byte-level BPE model; returns (vocab, merges) in the format GPT-2 style tokenizers take.

    The full 256-byte alphabet is kept, so any text (including unseen characters) still tokenizes.
    """
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(list(corpus), trainer=trainer)
    with tempfile.TemporaryDirectory() as tmp:
        tok.model.save(tmp)
        vocab = json.loads((Path(tmp) / "vocab.json").read_text())
        merges = [
            line for line in (Path(tmp) / "merges.txt").read_text().splitlines() if line and not line.startswith("#")
        ]
    return vocab, [tuple(m.split(" ")) for m in merges]


def give_head_trained_scale(model, scale: float = HEAD_SCALE) -> None:
    """Scale a random twin's output embedding so LoRA on the body can move probabilities."""
    import torch

    head = model.get_output_embeddings()
    with torch.no_grad():
        head.weight.mul_(scale)
