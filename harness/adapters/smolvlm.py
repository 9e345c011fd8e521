"""SmolVLM-Base (Idefics3): the generic chat adapter; every difference is data in models/smolvlm.yaml.

Facts (shared/MODELS.md): the generation prompt ends with "Assistant:", so the template's answer turn
starts with a space (ChatAdapter finds it by rendering the template); `chat.strip_trailing_period`
drops the trailing period before scoring; the model's loss does not skip image tokens, and every
image-related token (`<image>`, `<fake_token_around_image>`, `<global-img>`, `<row_i_col_j>`) is found
by name in the loaded tokenizer and never labelled. Kept as a name for older cards and specs.
"""

from __future__ import annotations

from harness.adapters.chat import ChatAdapter

__all__ = ["SmolVLMAdapter"]


class SmolVLMAdapter(ChatAdapter):
    family = "idefics3"
