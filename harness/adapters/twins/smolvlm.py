"""SmolVLM twin: real Idefics3ForConditionalGeneration / Idefics3Processor classes at toy size.

Mirrors HuggingFaceTB/SmolVLM-Base: SigLIP-style vision tower + pixel-shuffle connector + Llama text
model, GPT-2 style byte-level BPE tokenizer with the real special tokens (bos `<|im_start|>`, eos
`<end_of_utterance>`, pad `<|im_end|>`, `<global-img>`, `<row_i_col_j>`) and the real chat template.
Only the sizes differ: 32-pixel tiles of 8-pixel patches, pixel shuffle 2 -> 4 image tokens per tile
(the real model: 384-pixel tiles, 14-pixel patches, shuffle 3 -> 81 tokens per tile).
"""

from __future__ import annotations

from pathlib import Path

from harness.adapters.twins.common import TOY_TEXT_SIZE, give_head_trained_scale, train_byte_bpe
from harness.data import SYNTH_VOCAB_TEXT

__all__ = ["CHAT_TEMPLATE", "SPECIAL_TOKENS", "TILE", "build_twin"]

# The chat template of HuggingFaceTB/SmolVLM-Base (processor chat template): "User:" is glued to the
# colon when the first content item is an image, and the generation prompt is "Assistant:" with no space.
CHAT_TEMPLATE = (
    "<|im_start|>{% for message in messages %}{{message['role'] | capitalize}}"
    "{% if message['content'][0]['type'] == 'image' %}{{':'}}{% else %}{{': '}}{% endif %}"
    "{% for line in message['content'] %}{% if line['type'] == 'text' %}{{line['text']}}"
    "{% elif line['type'] == 'image' %}{{ '<image>' }}{% endif %}{% endfor %}<end_of_utterance>\n{% endfor %}"
    "{% if add_generation_prompt %}{{ 'Assistant:' }}{% endif %}"
)
ROW_COL_TOKENS = [f"<row_{i}_col_{j}>" for i in range(1, 7) for j in range(1, 7)]
SPECIAL_TOKENS = ["<|im_start|>", "<|im_end|>", "<fake_token_around_image>", "<image>", "<end_of_utterance>",
                  "<global-img>", *ROW_COL_TOKENS]
TILE = 32  # pixels per tile side (real: 384)
PATCH = 8  # pixels per vision patch (real: 14)
SCALE = 2  # pixel-shuffle factor (real: 3)
IMAGE_SEQ_LEN = (TILE // PATCH) ** 2 // SCALE**2  # 4 tokens per tile (real: 81)


def build_twin(out_dir: Path, seed: int = 0) -> None:
    import torch
    from transformers import (
        GPT2Tokenizer,
        Idefics3Config,
        Idefics3ForConditionalGeneration,
        Idefics3ImageProcessor,
        Idefics3Processor,
    )

    corpus = list(SYNTH_VOCAB_TEXT) + ["User:", "Assistant:", "Answer the question using a single word or phrase."]
    vocab, merges = train_byte_bpe(corpus, vocab_size=700)
    tok = GPT2Tokenizer(vocab=vocab, merges=merges, unk_token="<|endoftext|>", bos_token="<|endoftext|>",
                        eos_token="<|endoftext|>")
    tok.add_tokens(["<|endoftext|>"], special_tokens=True)
    tok.add_special_tokens({"additional_special_tokens": SPECIAL_TOKENS})
    tok.bos_token, tok.eos_token, tok.pad_token = "<|im_start|>", "<end_of_utterance>", "<|im_end|>"
    image_processor = Idefics3ImageProcessor(
        size={"longest_edge": 2 * TILE},  # the adapter card bounds this again; 2x2 tiles + global at most
        max_image_size={"longest_edge": TILE},
        do_image_splitting=True,
    )
    processor = Idefics3Processor(image_processor=image_processor, tokenizer=tok, image_seq_len=IMAGE_SEQ_LEN,
                                  chat_template=CHAT_TEMPLATE)
    ids = tok.convert_tokens_to_ids
    config = Idefics3Config(
        vision_config={
            "hidden_size": 64,  # 2 heads of 32
            "intermediate_size": 128,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
            "image_size": TILE,
            "patch_size": PATCH,
        },
        text_config={
            "model_type": "llama",
            "vocab_size": len(tok),
            **TOY_TEXT_SIZE,
            "num_key_value_heads": 2,
            "max_position_embeddings": 1024,
            "bos_token_id": ids("<|im_start|>"),
            "eos_token_id": ids("<end_of_utterance>"),
            "pad_token_id": ids("<|im_end|>"),
            "tie_word_embeddings": False,
        },
        scale_factor=SCALE,
        image_token_id=ids("<image>"),
        pad_token_id=ids("<|im_end|>"),
        tie_word_embeddings=False,
    )
    torch.manual_seed(seed)
    model = Idefics3ForConditionalGeneration(config)
    give_head_trained_scale(model)  # a random 0.02 head caps every logit near 1 (see twins/common.py)
    model.generation_config.bos_token_id = ids("<|im_start|>")
    model.generation_config.eos_token_id = ids("<end_of_utterance>")
    model.generation_config.pad_token_id = ids("<|im_end|>")
    model.save_pretrained(out_dir)
    processor.save_pretrained(out_dir)
