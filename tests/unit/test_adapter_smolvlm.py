"""SmolVLM-Base adapter on its Idefics3 twin: chat format, label masking, left-padded batches, cleaning."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.registry import load_model
from harness.specs import Decoding
from harness.train.masking import IGNORE_INDEX, labelled_share
from tests.helpers import twin_adapter

SUFFIX = "\nAnswer the question using a single word or phrase."


@pytest.fixture(scope="module")
def smol(harness_cache):
    from harness.data import write_synthetic
    from harness.data.load import load_split

    folder = Path(harness_cache) / "smolvlm-unit-data"
    if not folder.exists():
        write_synthetic(folder, sizes={"train": 6, "val": 0, "test": 0}, seed=5)
    adapter = twin_adapter("smolvlm", Path(harness_cache))
    return adapter, list(load_split(str(folder), "train"))


def test_twin_loads_like_the_hub_model(smol):
    adapter, _ = smol
    assert type(adapter.model).__name__ == "Idefics3ForConditionalGeneration"
    assert type(adapter.processor).__name__ == "Idefics3Processor"
    assert type(adapter.processor.image_processor).__name__.startswith("Idefics3ImageProcessor")
    # The card's bound on image splitting reaches the image processor through from_pretrained.
    card = load_model("smolvlm")
    assert adapter.processor.image_processor.size["longest_edge"] == card.twin["processor"]["size"]["longest_edge"]
    assert adapter.card.processor == {**card.processor, **card.twin["processor"]}  # the facts the spec carries
    assert card.processor["size"]["longest_edge"] % 384 == 0  # k x 384-pixel tiles on the real model


def test_prompt_is_the_smolvlm_chat_format(smol):
    adapter, examples = smol
    prompt = adapter.prompt_text(examples[0], SUFFIX)
    assert prompt == f"<|im_start|>User:<image>{examples[0].query}{SUFFIX}<end_of_utterance>\nAssistant:"
    assert adapter.answer_text("14") == " 14<end_of_utterance>"


def test_image_token_ids_are_looked_up(smol):
    adapter, _ = smol
    tok = adapter.tokenizer
    ids = adapter.image_token_ids()
    expected = ["<image>", "<fake_token_around_image>", "<global-img>", "<row_1_col_1>", "<row_6_col_6>"]
    for token in expected:
        assert tok.convert_tokens_to_ids(token) in ids, token
    assert len(ids) == len(set(ids)) == 3 + 36
    assert tok.convert_tokens_to_ids("<end_of_utterance>") not in ids


def test_only_answer_and_end_of_utterance_are_labelled(smol):
    adapter, examples = smol
    batch = adapter.training_batch(examples, SUFFIX, max_length=4096)
    labels, ids, mask = batch["labels"], batch["input_ids"], batch["attention_mask"]
    image_ids = set(adapter.image_token_ids())
    tok = adapter.tokenizer
    # The images were split into tiles: row/column tokens are in the sequence and never labelled.
    assert tok.convert_tokens_to_ids("<row_1_col_1>") in ids.tolist()[0]
    answer_tokens = 0
    for row, example in enumerate(examples):
        labelled = ids[row][labels[row] != IGNORE_INDEX].tolist()
        assert tok.decode(labelled) == f" {example.answer}<end_of_utterance>"
        assert not image_ids.intersection(labelled)
        last = int(mask[row].nonzero().max())  # right padding in training
        assert labels[row, last] == tok.convert_tokens_to_ids("<end_of_utterance>")
        assert labels[row, last + 1:].eq(IGNORE_INDEX).all()
        answer_tokens += len(labelled)
    share = labelled_share(labels)
    assert share == pytest.approx(answer_tokens / labels.numel())
    assert 0 < share < 0.15


def test_batched_generation_left_pads_and_matches_single(smol):
    adapter, examples = smol
    decoding = Decoding(max_new_tokens=5)
    batch = adapter.prepare(examples[:3], SUFFIX)
    mask = batch.inputs["attention_mask"]
    assert adapter.tokenizer.padding_side == "left"
    assert mask[:, -1].all()  # every row ends with its prompt: padding went to the left
    assert len(set(batch.prompt_tokens)) > 1 and not mask[:, 0].all()
    texts, counts = adapter.decode(adapter.generate(batch, decoding))
    for i, example in enumerate(examples[:3]):
        single, _ = adapter.decode(adapter.generate(adapter.prepare([example], SUFFIX), decoding))
        assert single[0] == texts[i]
    assert all(1 <= c <= 5 for c in counts)


@pytest.mark.parametrize("raw,clean", [(" 14", "14"), (" Egypt.", "Egypt"), (" 3.5", "3.5"), ("28.6.", "28.6"),
                                       (" yes. ", "yes"), ("", "")])
def test_clean_strips_leading_space_and_trailing_period(smol, raw, clean):
    adapter, _ = smol
    assert adapter.clean(raw) == clean


def test_base_and_finetuned_decode_alike():
    from tests.helpers import plan_runs

    for preset in ("smoke", None):
        specs = plan_runs(["smolvlm"], ["base", "finetuned"], preset=preset)
        assert {s.variant for s in specs} == {"base", "finetuned"}
        assert len({str(sorted(s.decoding.items())) for s in specs}) == 1
        assert specs[0].decoding["do_sample"] is False and specs[0].decoding["num_beams"] == 1


def test_adapter_with_an_unexpected_key_fails_naming_it(harness_cache, tmp_path):
    """The strict adapter-key check covers SmolVLM too: peft alone drops unknown keys without a word."""
    from peft import LoraConfig, get_peft_model
    from safetensors.torch import load_file, save_file

    from harness.errors import HarnessError

    def load(**kwargs):
        return twin_adapter("smolvlm",
                            Path(harness_cache), **kwargs)

    base = load()
    get_peft_model(base.model, LoraConfig(r=2, target_modules=["q_proj"], task_type="CAUSAL_LM")).save_pretrained(
        tmp_path / "lora")
    assert type(load(adapter_path=str(tmp_path / "lora")).model).__name__.startswith("PeftModel")
    path = tmp_path / "lora" / "adapter_model.safetensors"
    state = load_file(path)
    key = next(k for k in state if k.endswith("q_proj.lora_A.weight"))
    state[key.replace("q_proj", "k_proj")] = state[key].clone()  # a module the adapter's config never targets
    save_file(state, path, metadata={"format": "pt"})
    with pytest.raises(HarnessError, match=r"^smolvlm: adapter .* 1 unexpected key\(s\) \(e\.g\. .*k_proj\.lora_A"
                                           r"\.weight\)[^\n]*$"):
        load(adapter_path=str(tmp_path / "lora"))
