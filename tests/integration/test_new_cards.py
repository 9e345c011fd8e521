"""The cards whose twin is built by the generic builder from the card alone (Qwen2.5-VL, Qwen3-VL, SmolVLM2,
InternVL3, Gemma 3, and any added later): the real template and special tokens reach the twin, the trained
span is the answer and its end-of-turn token, image tokens are never labelled, and Gemma 3 trains with its
own bidirectional image mask (token_type_ids)."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.registry import config_root, load_model
from tests.helpers import models_where, synthetic_examples, twin_adapter

pytestmark = pytest.mark.integration

GENERIC = models_where(lambda card: card.twin.get("builder", "").startswith("harness.adapters.twins.generic:"))


@pytest.mark.parametrize("name", GENERIC)
def test_twin_carries_the_real_template_and_labels_only_the_answer(name, harness_env, harness_cache):
    card = load_model(name)
    adapter = twin_adapter(name, Path(harness_cache))
    template = (config_root() / card.twin["chat_template"]).read_text()
    assert adapter.processor.chat_template == template
    examples = synthetic_examples(harness_cache, "new-cards", 2, seed=3)
    prepared = adapter.prepare(examples, "")
    assert all(n > 0 for n in prepared.image_tokens)  # the processor expanded the template's image marker
    eot = adapter.end_of_turn_token()
    assert eot in card.twin["special_tokens"] or eot in card.twin.get("tokenizer", {}).values()
    assert adapter.tokenizer.convert_tokens_to_ids(eot) in adapter.stop_token_ids()
    batch = adapter.training_batch(examples, "", 4096)
    bos = adapter.tokenizer.bos_token_id
    for ids in (prepared.inputs["input_ids"], batch["input_ids"]):  # Gemma: template and tokenizer both add BOS
        assert all(row.tolist().count(bos) <= 1 for row in ids) or bos == adapter.tokenizer.pad_token_id
    image_ids = set(adapter.image_token_ids())
    for row, labels, ex in zip(batch["input_ids"], batch["labels"], examples):
        kept = labels[labels != -100].tolist()
        assert not image_ids & set(kept)
        assert adapter.tokenizer.decode(kept) == adapter.answer_text(ex.answer)
        assert adapter.answer_text(ex.answer).endswith(eot) and ex.answer in adapter.answer_text(ex.answer)
        assert 0 < len(kept) < int((row != adapter.tokenizer.pad_token_id).sum())


def test_gemma3_trains_with_its_bidirectional_image_mask(harness_env, harness_cache):
    """Gemma 3's processor marks image tokens in token_type_ids and its forward builds the bidirectional mask
    over each image from them (transformers 5.24, in generation too): the fine-tune must pass them."""
    import torch

    adapter = twin_adapter("gemma3", Path(harness_cache))
    examples = synthetic_examples(harness_cache, "new-cards", 2, seed=3)
    batch = adapter.training_batch(examples, "", 4096)
    soft = adapter.tokenizer.convert_tokens_to_ids("<image_soft_token>")
    assert torch.equal(batch["token_type_ids"].bool(), batch["input_ids"] == soft)
    with torch.no_grad():
        masked = adapter.model(**batch).logits
        causal = adapter.model(**{k: v for k, v in batch.items() if k != "token_type_ids"}).logits
    image = batch["token_type_ids"].bool()
    # An image token sees the later tokens of its image only through the mask; text before the image not.
    first = image.float().argmax(dim=1)
    rows = torch.arange(len(first))
    assert (masked[rows, first] - causal[rows, first]).abs().max() > 1e-3
    assert torch.allclose(masked[rows, first - 1], causal[rows, first - 1], atol=1e-5)


def test_unpinned_revisions_are_recorded_and_doctor_warns():
    from harness.doctor import doctor_lines
    from harness.pin import COMMIT

    for name in GENERIC:
        card = load_model(name)
        assert COMMIT.fullmatch(card.revision) or card.unpinned, f"{name}: unpinned revision without a note"
        lines, _ = doctor_lines([name])
        warned = [line for line in lines if f"revision '{card.revision}'" in line]
        assert bool(warned) == (not COMMIT.fullmatch(card.revision))
        if warned:
            assert card.unpinned in warned[0] and f"harness pin {name} --write" in warned[0]


SAMPLING = [n for n in GENERIC if (load_model(n).twin.get("generation") or {}).get("do_sample")]


@pytest.mark.parametrize("name", SAMPLING)
def test_twin_samples_as_the_hub_file_does_and_runs_still_decode_greedily(name, harness_env, harness_cache):
    import torch

    from harness.specs import Decoding
    from tests.helpers import plan_runs

    adapter = twin_adapter(name, Path(harness_cache))
    config = adapter.model.generation_config
    assert config.do_sample  # the hub's generation_config.json samples, as the card's twin section says
    decoding = Decoding.from_dict(plan_runs([name], preset="smoke")[0].decoding)
    examples = synthetic_examples(harness_cache, "new-cards", 2, seed=3)
    saved = config.to_dict()
    try:
        config.update(temperature=50.0, top_k=50, top_p=1.0)  # any sampling leaking into a run changes tokens
        runs = []
        for seed in (0, 1):
            torch.manual_seed(seed)
            runs.append(adapter.generate(adapter.prepare(examples, ""), decoding).tokens.tolist())
        config.update(do_sample=False)
        greedy = adapter.generate(adapter.prepare(examples, ""), decoding).tokens.tolist()
    finally:
        config.update(**saved)
    assert runs[0] == runs[1] == greedy
