"""Moondream2 twin text model: transformers' Phi plus the 2024 release's generation interface.

The 2024-07-23 release ships its own `modeling_phi.py`; its `PhiForCausalLM.prepare_inputs_for_generation`
reads `past_key_values.get_seq_length()`, `.seen_tokens` and `.get_max_length()` on the first decoding
step. transformers 4.49 removed `Cache.get_max_length`, so the release cannot generate there, and from
4.50 its Phi class also lacks GenerationMixin. Under transformers < 4.50 (the Moondream image) the twin
generates through its own version of that method (written from the release's behaviour), so an
incompatible pin fails the same way; on 5.x, where the release cannot run at all, it keeps
transformers' own path so the host's smoke preset still covers the family.
`GENERATION_INTERFACE` names the path in use; the adapter records it in the result.
"""

import transformers
from packaging.version import Version
from transformers import PhiForCausalLM as _TransformersPhiForCausalLM
from transformers.cache_utils import Cache

REMOTE_2024 = Version(transformers.__version__) < Version("4.50")
GENERATION_INTERFACE = "moondream-2024" if REMOTE_2024 else "transformers"


def prepare_inputs_2024(self, input_ids, past_key_values=None, attention_mask=None, inputs_embeds=None, **kwargs):
    """The release's step inputs: trim input_ids to the unseen tokens, positions from the mask."""
    if past_key_values is not None:
        if isinstance(past_key_values, Cache):
            cache_length = past_key_values.get_seq_length()
            past_length = past_key_values.seen_tokens
            max_cache_length = past_key_values.get_max_length()  # gone in transformers 4.49
        else:  # legacy tuple cache
            cache_length = past_length = past_key_values[0][0].shape[2]
            max_cache_length = None
        if attention_mask is not None and attention_mask.shape[1] > input_ids.shape[1]:
            input_ids = input_ids[:, -(attention_mask.shape[1] - past_length):]
        elif past_length < input_ids.shape[1]:
            input_ids = input_ids[:, past_length:]
        if (max_cache_length is not None and attention_mask is not None
                and cache_length + input_ids.shape[1] > max_cache_length):
            attention_mask = attention_mask[:, -max_cache_length:]
    position_ids = kwargs.get("position_ids")
    if attention_mask is not None and position_ids is None:
        position_ids = attention_mask.long().cumsum(-1) - 1  # left padding: count real tokens only
        position_ids.masked_fill_(attention_mask == 0, 1)
        if past_key_values:
            position_ids = position_ids[:, -input_ids.shape[1]:]
    # The prompt embeddings feed the first step only; later steps feed the generated ids.
    if inputs_embeds is not None and (input_ids is None or input_ids.shape[1] == 0):
        model_inputs = {"inputs_embeds": inputs_embeds}
    else:
        model_inputs = {"input_ids": input_ids}
    model_inputs.update({"position_ids": position_ids, "past_key_values": past_key_values,
                         "use_cache": kwargs.get("use_cache"), "attention_mask": attention_mask})
    return model_inputs


class PhiForCausalLM(_TransformersPhiForCausalLM):
    generation_interface = GENERATION_INTERFACE
    if REMOTE_2024:
        prepare_inputs_for_generation = prepare_inputs_2024
