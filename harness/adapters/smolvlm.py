"""SmolVLM-Base (Idefics3): chat format `<|im_start|>User:<image>Q<end_of_utterance>\\nAssistant:`.

Facts (shared/MODELS.md): the generation prompt ends with "Assistant:", so answers start with a space;
the processor ignores `padding_side` (ProcessorAdapter._batch sets it on the tokenizer); the model's
loss does not skip image tokens, so every image-related token id is looked up here and never labelled.
Image splitting is bounded by the card's processor kwargs (`size: {longest_edge: k * 384}`).
"""

from __future__ import annotations

import re

from harness.adapters.base import ProcessorAdapter

__all__ = ["SmolVLMAdapter"]

END_OF_UTTERANCE = "<end_of_utterance>"
IMAGE_TOKENS = ("<image>", "<fake_token_around_image>", "<global-img>")
# Idefics3Processor writes <row_{i}_col_{j}> for i, j in 1..6 when it splits an image into tiles.
ROW_COL_TOKENS = tuple(f"<row_{i}_col_{j}>" for i in range(1, 7) for j in range(1, 7))
LORA_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


class SmolVLMAdapter(ProcessorAdapter):
    family = "idefics3"

    def messages(self, example, prompt_suffix: str) -> list[dict]:
        content = [{"type": "image"}, {"type": "text", "text": example.query + prompt_suffix}]
        return [{"role": "user", "content": content}]

    def prompt_text(self, example, prompt_suffix: str) -> str:
        return self.processor.apply_chat_template(self.messages(example, prompt_suffix), add_generation_prompt=True)

    def answer_text(self, answer: str) -> str:
        # The template's assistant turn: "Assistant:" + " {answer}" + "<end_of_utterance>".
        return f" {answer}{END_OF_UTTERANCE}"

    def clean(self, text: str) -> str:
        """Drop the leading space the "Assistant:" prompt implies and one trailing period."""
        text = text.strip()
        return re.sub(r"(?<!\.)\.$", "", text).rstrip()

    def stop_token_ids(self) -> list[int]:
        ids = {self.tokenizer.convert_tokens_to_ids(END_OF_UTTERANCE)}
        if self.tokenizer.eos_token_id is not None:
            ids.add(self.tokenizer.eos_token_id)
        return sorted(ids)

    def image_token_ids(self) -> list[int]:
        tok = self.tokenizer
        ids = []
        for token in IMAGE_TOKENS + ROW_COL_TOKENS:
            token_id = tok.convert_tokens_to_ids(token)
            if token_id is not None and token_id != tok.unk_token_id:
                ids.append(token_id)
        return ids

    def default_lora_targets(self) -> list[str]:
        return list(LORA_TARGETS)
