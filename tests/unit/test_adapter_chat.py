"""The generic ChatAdapter derives what the Qwen2-VL and SmolVLM adapters used to hard-code (the regression guard)."""

from __future__ import annotations

import pytest

from tests.helpers import synthetic_examples, twin_adapter

pytestmark = pytest.mark.integration

ROW_COL = [f"<row_{i}_col_{j}>" for i in range(1, 7) for j in range(1, 7)]
# The values the family adapters hard-coded before the generic adapter.
BEFORE = {
    "qwen2vl": {"answer": "14<|im_end|>", "eot": "<|im_end|>",
                "image": ["<|vision_start|>", "<|image_pad|>", "<|vision_end|>", "<|video_pad|>"]},
    "smolvlm": {"answer": " 14<end_of_utterance>", "eot": "<end_of_utterance>",
                "image": ["<image>", "<fake_token_around_image>", "<global-img>", *ROW_COL]},
}


@pytest.fixture(scope="module", params=sorted(BEFORE))
def loaded(request, harness_cache):
    return request.param, twin_adapter(request.param, harness_cache), synthetic_examples(harness_cache, "chat-ex", 2, 3)


def test_answer_span_stop_and_image_ids_equal_the_old_hard_coded_ones(loaded):
    name, adapter, _ = loaded
    before, tok = BEFORE[name], adapter.tokenizer
    assert adapter.answer_text("14") == before["answer"]
    eos = adapter.model.generation_config.eos_token_id
    old_stop = set(eos if isinstance(eos, list) else [eos]) if name == "qwen2vl" else set()
    old_stop |= {tok.convert_tokens_to_ids(before["eot"]), tok.eos_token_id}
    assert adapter.stop_token_ids() == sorted(old_stop)
    assert sorted(adapter.image_token_ids()) == sorted(tok.convert_tokens_to_ids(t) for t in before["image"])


def test_prompt_is_the_template_with_the_cards_messages(loaded):
    name, adapter, examples = loaded
    ex = examples[0]
    content = [{"type": "image"}, {"type": "text", "text": ex.query + " S"}]
    messages = [{"role": "user", "content": content}]
    if name == "qwen2vl":  # the old adapter's explicit system message
        messages.insert(0, {"role": "system", "content": [{"type": "text", "text": "You are a helpful assistant."}]})
    expected = adapter.processor.apply_chat_template(messages, add_generation_prompt=True)
    assert adapter.prompt_text(ex, " S") == expected
    assert adapter.default_lora_targets() == adapter.card.chat["lora_targets"]


def test_prefix_lm_family_is_refused_for_finetuning(config_copy):
    import yaml

    from harness.adapters.chat import ChatAdapter

    card = yaml.safe_load((config_copy / "models" / "qwen2vl.yaml").read_text())
    card.update(name="pali", family="paligemma", adapter="harness.adapters.chat:ChatAdapter")
    (config_copy / "models" / "pali.yaml").write_text(yaml.safe_dump(card))
    from harness.registry import load_model

    assert "prefix-LM" in ChatAdapter.finetune_refusal(load_model("pali"))
    assert ChatAdapter.finetune_refusal(load_model("qwen2vl")) is None
