"""A byte-level BPE vocabulary trained in a second, so twins get a real tokenizer class offline."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterable
from pathlib import Path

__all__ = ["train_byte_bpe"]


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
