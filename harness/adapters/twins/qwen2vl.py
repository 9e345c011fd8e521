"""Qwen2-VL twin: real Qwen2VLForConditionalGeneration / Qwen2VLProcessor classes, toy sizes."""

from __future__ import annotations

import json
import re
from pathlib import Path

from harness.adapters.twins.common import TOY_TEXT_SIZE, give_head_trained_scale, train_byte_bpe
from harness.data import SYNTH_VOCAB_TEXT

__all__ = ["CHAT_TEMPLATE", "LEGACY_PIXELS", "build_twin", "to_legacy_adapter_keys"]

# The chat template of Qwen/Qwen2-VL-2B-Instruct (default system message injected when absent).
CHAT_TEMPLATE = (
    "{% set image_count = namespace(value=0) %}{% set video_count = namespace(value=0) %}"
    "{% for message in messages %}{% if loop.first and message['role'] != 'system' %}"
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n{% endif %}"
    "<|im_start|>{{ message['role'] }}\n{% if message['content'] is string %}{{ message['content'] }}<|im_end|>\n"
    "{% else %}{% for content in message['content'] %}"
    "{% if content['type'] == 'image' or 'image' in content or 'image_url' in content %}"
    "{% set image_count.value = image_count.value + 1 %}{% if add_vision_id %}Picture {{ image_count.value }}: "
    "{% endif %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif content['type'] == 'video' or 'video' in content %}{% set video_count.value = video_count.value + 1 %}"
    "{% if add_vision_id %}Video {{ video_count.value }}: {% endif %}<|vision_start|><|video_pad|><|vision_end|>"
    "{% elif 'text' in content %}{{ content['text'] }}{% endif %}{% endfor %}<|im_end|>\n{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
# The hub's preprocessor_config.json spells its bounds in the legacy keys; transformers 5 applies them
# after any `size` override. Hub: 3136 / 12845056; the twin's minimum is below the twin card's (3136),
# so a lost lower bound shows as well as a lost upper one.
LEGACY_PIXELS = {"min_pixels": 28 * 28, "max_pixels": 12845056}
# The hub's generation_config.json: it samples, and ends on both <|im_end|> and <|endoftext|>.
HUB_SAMPLING = {"do_sample": True, "top_k": 1, "top_p": 0.001, "temperature": 0.1, "repetition_penalty": 1.05}
SPECIAL_TOKENS = ["<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>", "<|image_pad|>", "<|video_pad|>"]


def build_twin(out_dir: Path, seed: int = 0) -> None:
    import torch
    from transformers import (
        GenerationConfig,
        Qwen2Tokenizer,
        Qwen2VLConfig,
        Qwen2VLForConditionalGeneration,
        Qwen2VLImageProcessor,
        Qwen2VLProcessor,
        Qwen2VLVideoProcessor,
    )

    corpus = list(SYNTH_VOCAB_TEXT) + ["You are a helpful assistant.", "Answer the question using a single word"]
    vocab, merges = train_byte_bpe(corpus, vocab_size=700)
    tok = Qwen2Tokenizer(vocab=vocab, merges=merges, unk_token=None)
    tok.add_tokens(["<|endoftext|>"], special_tokens=True)
    tok.add_special_tokens({"additional_special_tokens": SPECIAL_TOKENS})
    tok.eos_token = "<|im_end|>"  # as the Instruct release's tokenizer_config.json; pad stays <|endoftext|>
    processor = Qwen2VLProcessor(
        image_processor=Qwen2VLImageProcessor(),
        tokenizer=tok,
        video_processor=Qwen2VLVideoProcessor(),
        chat_template=CHAT_TEMPLATE,
    )
    ids = tok.convert_tokens_to_ids
    config = Qwen2VLConfig(
        text_config={
            "vocab_size": len(tok),
            **TOY_TEXT_SIZE,
            "num_key_value_heads": 2,
            "max_position_embeddings": 4096,
            # head_dim 32: the three M-RoPE sections (time, height, width) must sum to head_dim / 2.
            "rope_parameters": {"rope_type": "default", "rope_theta": 10000.0, "mrope_section": [4, 6, 6]},
            "bos_token_id": ids("<|endoftext|>"),
            "eos_token_id": ids("<|im_end|>"),
            "pad_token_id": ids("<|endoftext|>"),
        },
        vision_config={
            "depth": 2,
            "embed_dim": 64,  # 2 heads of 32
            "hidden_size": TOY_TEXT_SIZE["hidden_size"],  # the merger projects into the text model
            "num_heads": 2,
            "mlp_ratio": 2,
            "patch_size": 14,
            "spatial_merge_size": 2,
            "temporal_patch_size": 2,
        },
        image_token_id=ids("<|image_pad|>"),
        video_token_id=ids("<|video_pad|>"),
        vision_start_token_id=ids("<|vision_start|>"),
        vision_end_token_id=ids("<|vision_end|>"),
        tie_word_embeddings=False,
    )
    torch.manual_seed(seed)
    model = Qwen2VLForConditionalGeneration(config)
    give_head_trained_scale(model)
    model.generation_config = GenerationConfig(
        bos_token_id=ids("<|endoftext|>"), pad_token_id=ids("<|endoftext|>"),
        eos_token_id=[ids("<|im_end|>"), ids("<|endoftext|>")], **HUB_SAMPLING,
    )
    model.save_pretrained(out_dir)
    processor.save_pretrained(out_dir)
    _write_legacy_processor_files(Path(out_dir))


def _write_legacy_processor_files(out_dir: Path) -> None:
    """Lay the processor out as the hub repo does: a flat preprocessor_config.json with legacy bounds.

    The hub has no processor_config.json (5.x writes one, nesting the image and video processors), so
    transformers 5 builds the image and video processors from preprocessor_config.json.
    """
    nested = json.loads((out_dir / "processor_config.json").read_text())
    image = nested["image_processor"]
    image.pop("size", None)
    image.update(LEGACY_PIXELS, processor_class=nested.get("processor_class", "Qwen2VLProcessor"))
    (out_dir / "preprocessor_config.json").write_text(json.dumps(image, indent=2) + "\n")
    (out_dir / "processor_config.json").unlink()


# transformers >= 4.52 layout -> the layout the study's adapter file has (trained with < 4.52).
_LEGACY_KEYS = ((re.compile(r"^base_model\.model\.model\.language_model\."), "base_model.model.model."),
                (re.compile(r"^base_model\.model\.model\.visual\."), "base_model.model.visual."))


def to_legacy_adapter_keys(adapter_dir: Path) -> None:
    """Rewrite a saved PEFT adapter's keys in place into the < 4.52 layout (`model.layers.*`, `visual.*`)."""
    from safetensors.torch import load_file, save_file

    path = Path(adapter_dir) / "adapter_model.safetensors"
    state = load_file(path)
    renamed = {}
    for key, value in state.items():
        for pattern, repl in _LEGACY_KEYS:
            key = pattern.sub(repl, key)
        renamed[key] = value
    save_file(renamed, path, metadata={"format": "pt"})
