"""Label masking on the real Qwen2-VL processor (twin): only answer + end-of-turn tokens are labelled."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from harness.errors import HarnessError
from harness.train.masking import IGNORE_INDEX, label_answer_suffix, labelled_share
from tests.helpers import twin_adapter


@pytest.fixture(scope="module")
def qwen(harness_cache):
    from harness.data import write_synthetic
    from harness.data.load import load_split

    data_dir = write_synthetic(Path(harness_cache) / "mask-data", sizes={"train": 6, "val": 0, "test": 0}, seed=1)
    adapter = twin_adapter("qwen2vl", Path(harness_cache))
    return adapter, list(load_split(str(data_dir), "train"))


def test_only_answer_and_end_token_are_labelled(qwen):
    adapter, examples = qwen
    batch = adapter.training_batch(examples, "\nAnswer briefly.", max_length=4096)
    labels, ids = batch["labels"], batch["input_ids"]
    image_ids = set(adapter.image_token_ids())
    for row, example in enumerate(examples):
        labelled = ids[row][labels[row] != IGNORE_INDEX].tolist()
        assert adapter.tokenizer.decode(labelled) == example.answer + "<|im_end|>"
        assert not image_ids.intersection(labelled)
        # Labelled tokens are the last real ones: the prompt, system text and padding are masked.
        last = int(batch["attention_mask"][row].nonzero().max())
        assert labels[row, last] != IGNORE_INDEX and labels[row, last + 1:].eq(IGNORE_INDEX).all()
    share = labelled_share(labels)
    answer_tokens = sum(len(adapter.tokenizer(ex.answer + "<|im_end|>")["input_ids"]) for ex in examples)
    assert share == pytest.approx(answer_tokens / labels.numel())
    assert 0 < share < 0.1  # image and prompt tokens dominate a chart-QA sequence


def test_too_long_fails_instead_of_truncating(qwen):
    adapter, examples = qwen
    with pytest.raises(HarnessError, match="exceed max_length 16"):
        adapter.training_batch(examples[:1], "", max_length=16)


def test_suffix_mismatch_is_refused():
    ids = torch.tensor([[5, 6, 7, 8, 0]])
    mask = torch.tensor([[1, 1, 1, 1, 0]])
    labels = label_answer_suffix(ids, mask, [[7, 8]], never_label=[5], example_ids=["a"])
    assert labels.tolist() == [[IGNORE_INDEX, IGNORE_INDEX, 7, 8, IGNORE_INDEX]]
    with pytest.raises(HarnessError, match="example b: the answer tokenizes differently"):
        label_answer_suffix(ids, mask, [[6, 8]], never_label=[], example_ids=["b"])
    with pytest.raises(HarnessError, match="image tokens inside the answer span"):
        label_answer_suffix(ids, mask, [[7, 8]], never_label=[8], example_ids=["c"])
