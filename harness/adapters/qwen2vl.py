"""Qwen2-VL-2B-Instruct: chat template with a fixed system message, one visual token per 28x28 area."""

from __future__ import annotations

from harness.adapters.base import ProcessorAdapter
from harness.errors import HarnessError

__all__ = ["Qwen2VLAdapter", "requested_pixel_bounds"]

# Explicit, so training and evaluation see the same messages (the template would inject this anyway).
SYSTEM_PROMPT = "You are a helpful assistant."
IMAGE_TOKENS = ("<|vision_start|>", "<|image_pad|>", "<|vision_end|>", "<|video_pad|>")


def requested_pixel_bounds(processor_kwargs: dict) -> dict:
    """The card's pixel bounds; `min_pixels` / `max_pixels` override `size` as in Qwen2VLImageProcessor."""
    size = processor_kwargs.get("size") or {}
    return {
        "min_pixels": processor_kwargs.get("min_pixels", size.get("shortest_edge")),
        "max_pixels": processor_kwargs.get("max_pixels", size.get("longest_edge")),
    }


class Qwen2VLAdapter(ProcessorAdapter):
    family = "qwen2vl"
    # Adapters trained with transformers < 4.52 (the study's PJN_qwen_2b) name the text layers
    # `model.layers.*` and the vision tower `visual.*`; 5.x nests them under `model.language_model` /
    # `model.visual`, and peft 0.21 does not convert them for qwen2_vl. New-layout keys pass unchanged.
    adapter_key_mapping = {r"^model\.(?!language_model|visual)": "model.language_model.", r"^visual": "model.visual"}

    def load(self) -> None:
        super().load()
        self._check_pixel_bounds()

    def pixel_bounds(self) -> dict:
        """The bounds the loaded image processor applies (what decides the image token count)."""
        size = self.processor.image_processor.size
        return {"min_pixels": int(size["shortest_edge"]), "max_pixels": int(size["longest_edge"])}

    def _check_pixel_bounds(self) -> None:
        # The hub's preprocessor_config.json stores legacy min_pixels / max_pixels, which transformers 5
        # applies after a `size` override: a card's bounds can be lost without a word.
        wanted = {k: v for k, v in requested_pixel_bounds(self.request.processor_kwargs).items() if v is not None}
        actual = self.pixel_bounds()
        if any(actual[k] != v for k, v in wanted.items()):
            raise HarnessError(
                f"{self.card.name}: image processor of {self.request.source} applies pixel bounds {actual}, "
                f"not the card's {wanted}; set min_pixels / max_pixels in the card's processor section"
            )

    def environment(self) -> dict:
        return {**super().environment(), "pixel_bounds": self.pixel_bounds(), "stop_token_ids": self.stop_token_ids()}

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
        # The release ends on <|im_end|> and <|endoftext|> (its generation config's eos list, while the
        # tokenizer's eos is <|im_end|> alone): keep every id either names.
        eos = getattr(getattr(self.model, "generation_config", None), "eos_token_id", None)
        ids = set(eos if isinstance(eos, (list, tuple)) else [] if eos is None else [eos])
        ids.add(self.tokenizer.convert_tokens_to_ids("<|im_end|>"))
        if self.tokenizer.eos_token_id is not None:
            ids.add(self.tokenizer.eos_token_id)
        return sorted(int(i) for i in ids)

    def image_token_ids(self) -> list[int]:
        return [self.tokenizer.convert_tokens_to_ids(t) for t in IMAGE_TOKENS]

    def default_lora_targets(self) -> list[str]:
        return ["q_proj", "v_proj"]
