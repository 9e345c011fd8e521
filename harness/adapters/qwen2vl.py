"""Qwen2-VL-2B-Instruct: the generic chat adapter plus the family's two real quirks.

Prompt, answer span, stop and image ids come from ChatAdapter (the card's `chat:` names the system
message: explicit, so training and evaluation see the same messages). Kept here: the pixel-bound check
(the hub's legacy preprocessor keys) and the mapping of adapter files saved under the < 4.52 layout.
"""

from __future__ import annotations

from harness.adapters.chat import ChatAdapter
from harness.errors import HarnessError

__all__ = ["Qwen2VLAdapter", "requested_pixel_bounds"]


def requested_pixel_bounds(processor_kwargs: dict) -> dict:
    """The card's pixel bounds; `min_pixels` / `max_pixels` override `size` as in Qwen2VLImageProcessor."""
    size = processor_kwargs.get("size") or {}
    return {
        "min_pixels": processor_kwargs.get("min_pixels", size.get("shortest_edge")),
        "max_pixels": processor_kwargs.get("max_pixels", size.get("longest_edge")),
    }


class Qwen2VLAdapter(ChatAdapter):
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
        return {**super().environment(), "pixel_bounds": self.pixel_bounds()}
