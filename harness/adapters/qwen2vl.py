"""Qwen2-VL-2B-Instruct: chat template with a fixed system message, one visual token per 28x28 area."""

from __future__ import annotations

from harness.adapters.base import ProcessorAdapter

__all__ = ["Qwen2VLAdapter"]

# Explicit, so training and evaluation see the same messages (the template would inject this anyway).
SYSTEM_PROMPT = "You are a helpful assistant."
IMAGE_TOKENS = ("<|vision_start|>", "<|image_pad|>", "<|vision_end|>", "<|video_pad|>")


class Qwen2VLAdapter(ProcessorAdapter):
    family = "qwen2vl"

    def messages(self, example, prompt_suffix: str) -> list[dict]:
        return [
            {"role": "system", "content": [{"type": "text", "text": SYSTEM_PROMPT}]},
            {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": example.query + prompt_suffix}]},
        ]

    def prompt_text(self, example, prompt_suffix: str) -> str:
        return self.processor.apply_chat_template(self.messages(example, prompt_suffix), add_generation_prompt=True)

    def answer_text(self, answer: str) -> str:
        # The official recipe labels the assistant span through <|im_end|>.
        return answer + "<|im_end|>"

    def stop_token_ids(self) -> list[int]:
        ids = {self.tokenizer.convert_tokens_to_ids("<|im_end|>")}
        if self.tokenizer.eos_token_id is not None:
            ids.add(self.tokenizer.eos_token_id)
        return sorted(ids)

    def image_token_ids(self) -> list[int]:
        return [self.tokenizer.convert_tokens_to_ids(t) for t in IMAGE_TOKENS]

    def default_lora_targets(self) -> list[str]:
        return ["q_proj", "v_proj"]
