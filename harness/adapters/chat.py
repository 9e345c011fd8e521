"""ChatAdapter: any AutoModelForImageTextToText model with a chat template, driven by its card's `chat:` section.

Everything model-specific is read from the loaded processor, tokenizer and generation config, or from
the card (`chat:` keys below); nothing is hard-coded per family:
- the prompt is the processor's chat template with the generation prompt;
- the trained answer text is what the template adds for an assistant turn (rendered with a marker
  answer and diffed against the generation prompt), cut after its end-of-turn token: generation stops
  there, so the newline some templates write after it is never produced;
- stop ids: the generation config's eos (int or list), the tokenizer's eos and that end-of-turn token;
- image ids: the processor's image tokens and every added token naming an image / vision / video or a
  tile position (`<row_1_col_2>`); never labelled.
Prefix-LM families (bidirectional attention over image + prompt) are refused for fine-tuning: a causal
mask would train them wrongly. token_type_ids a processor returns (Gemma 3: image tokens) go to the forward,
which builds its own mask from them, as generation does.
"""

from __future__ import annotations

import re
from functools import cached_property

from harness.adapters.base import ProcessorAdapter
from harness.errors import HarnessError

__all__ = ["PREFIX_LM_TYPES", "ChatAdapter", "image_token_names"]

# config.model_type of families whose prompt attends bidirectionally (token_type_ids mark the prefix).
PREFIX_LM_TYPES = ("paligemma",)
_IMAGE_NAME = re.compile(r"image|img|vision|video|row_\d+_col_\d+", re.IGNORECASE)
_MARKER = "ANSWERMARKER"  # a plain word: templates do not transform it


def image_token_names(processor, tokenizer, extra=()) -> list[str]:
    """Image-related special tokens: the processor's own attributes, then added tokens by name."""
    names = [getattr(processor, attr, None) for attr in ("image_token", "boi_token", "eoi_token",
                                                          "video_token", "fake_image_token", "global_image_token")]
    names += [t for t in tokenizer.get_added_vocab() if _IMAGE_NAME.search(t)]
    names += list(extra)
    return list(dict.fromkeys(n for n in names if isinstance(n, str) and n))


class ChatAdapter(ProcessorAdapter):
    family = "chat"

    @property
    def chat(self) -> dict:
        return dict(getattr(self.card, "chat", None) or {})

    @classmethod
    def finetune_refusal(cls, card) -> str | None:
        if _is_prefix_lm(card.family, card.chat):
            return (f"{card.name}: {card.family} attends bidirectionally over the image and prompt (prefix-LM); "
                    "this adapter trains with a causal mask only, so fine-tuning is refused")
        return None

    def load(self) -> None:
        super().load()
        model_type = getattr(getattr(self.model, "config", None), "model_type", "")
        self.prefix_lm = _is_prefix_lm(model_type, self.chat)

    # --- prompt and answer span ------------------------------------------------------------
    def messages(self, example, prompt_suffix: str) -> list[dict]:
        system = self.chat.get("system_prompt")
        user = {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": example.query + prompt_suffix}]}
        return ([{"role": "system", "content": [{"type": "text", "text": system}]}] if system else []) + [user]

    def prompt_text(self, example, prompt_suffix: str) -> str:
        return self.processor.apply_chat_template(self.messages(example, prompt_suffix), add_generation_prompt=True)

    @cached_property
    def _answer_affixes(self) -> tuple[str, str]:
        """(text before the answer, end-of-turn text after it) in the template's assistant turn."""
        from types import SimpleNamespace

        probe = SimpleNamespace(query="Q")
        prompt = self.prompt_text(probe, "")
        turn = {"role": "assistant", "content": [{"type": "text", "text": _MARKER}]}
        full = self.processor.apply_chat_template(self.messages(probe, "") + [turn])
        if not full.startswith(prompt) or _MARKER not in full[len(prompt):]:
            raise HarnessError(f"{self.card.name}: the chat template does not render an assistant turn after "
                               "its generation prompt; cannot find the answer span")
        before, _, after = full[len(prompt):].partition(_MARKER)
        eot = self._end_of_turn_token(after)
        return before, after[: after.index(eot) + len(eot)]

    def processor_call_kwargs(self) -> dict:
        # Gemma 3's template writes <bos> itself and its tokenizer prepends another: a doubled BOS.
        from types import SimpleNamespace

        bos = self.tokenizer.bos_token
        writes_bos = bool(bos) and self.prompt_text(SimpleNamespace(query="Q"), "").startswith(bos)
        return {"add_special_tokens": False} if writes_bos else {}

    def _end_of_turn_token(self, after: str) -> str:
        tok = self.tokenizer
        special = set(tok.get_added_vocab()) | set(tok.all_special_tokens)
        for piece in tok.tokenize(after):
            if piece in special:
                return piece
        raise HarnessError(f"{self.card.name}: the chat template ends an assistant turn with {after!r}, "
                           "which holds no special end-of-turn token")

    def answer_text(self, answer: str) -> str:
        before, eot = self._answer_affixes
        return f"{before}{answer}{eot}"

    def end_of_turn_token(self) -> str:
        return self._end_of_turn_token(self._answer_affixes[1])

    def clean(self, text: str) -> str:
        text = text.strip()
        if self.chat.get("strip_trailing_period"):  # one period, not an ellipsis
            text = re.sub(r"(?<!\.)\.$", "", text).rstrip()
        return text

    # --- token ids ------------------------------------------------------------------------
    def stop_token_ids(self) -> list[int]:
        eos = getattr(getattr(self.model, "generation_config", None), "eos_token_id", None)
        ids = set(eos if isinstance(eos, (list, tuple)) else [] if eos is None else [eos])
        ids.add(self.tokenizer.convert_tokens_to_ids(self.end_of_turn_token()))
        if self.tokenizer.eos_token_id is not None:
            ids.add(self.tokenizer.eos_token_id)
        return sorted(int(i) for i in ids)

    def image_token_ids(self) -> list[int]:
        tok = self.tokenizer
        names = image_token_names(self.processor, tok, self.chat.get("image_tokens") or ())
        ids = [tok.convert_tokens_to_ids(n) for n in names]
        return list(dict.fromkeys(i for i in ids if i is not None and i != tok.unk_token_id))

    def default_lora_targets(self) -> list[str] | str:
        return list(self.chat.get("lora_targets") or []) or "all-linear"

    def environment(self) -> dict:
        return {**super().environment(), "stop_token_ids": self.stop_token_ids()}

    def training_batch(self, examples: list, prompt_suffix: str, max_length: int) -> dict:
        if getattr(self, "prefix_lm", False):
            raise HarnessError(f"{self.card.name}: prefix-LM model; fine-tuning with a causal mask is refused")
        batch = super().training_batch(examples, prompt_suffix, max_length)
        # Gemma 3's processor marks image tokens in token_type_ids and its forward builds the bidirectional
        # mask over each image from them, in training as in generation: passing them is the model's own mask.
        # A model whose forward cannot take them would train causally where it runs bidirectionally: refused.
        if "token_type_ids" in batch and not _accepts(self.model, "token_type_ids"):
            raise HarnessError(f"{self.card.name}: its processor returns token_type_ids (a bidirectional mask) "
                               "that the model's forward does not take; fine-tuning with a causal mask is refused")
        return batch


def _accepts(model, name: str) -> bool:
    import inspect

    base = model.get_base_model() if hasattr(model, "get_base_model") else model  # peft wraps the forward
    params = inspect.signature(base.forward).parameters
    return name in params


def _is_prefix_lm(model_type: str, chat: dict) -> bool:
    flag = (chat or {}).get("prefix_lm")
    return bool(flag) if flag is not None else model_type in PREFIX_LM_TYPES
