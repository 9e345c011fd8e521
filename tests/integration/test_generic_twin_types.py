"""The generic twin builds the architectures the next cards need from transformers' config defaults alone."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.integration

TEMPLATE = "{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}"
TOKENS = {  # model_type -> the special tokens its processor writes (as the real tokenizers name them)
    "qwen2_5_vl": ["<|vision_start|>", "<|vision_end|>", "<|image_pad|>", "<|video_pad|>"],
    "qwen3_vl": ["<|vision_start|>", "<|vision_end|>", "<|image_pad|>", "<|video_pad|>"],
    "smolvlm": ["<fake_token_around_image>", "<image>", "<global-img>", "<end_of_utterance>"]
    + [f"<row_{i}_col_{j}>" for i in range(1, 7) for j in range(1, 7)],
    "internvl": ["<img>", "</img>", "<IMG_CONTEXT>", "<video>"],
    "gemma3": ["<start_of_image>", "<end_of_image>", "<image_soft_token>"],
}

ROLES = {  # named tokens these processors read off the tokenizer
    "gemma3": {"boi_token": "<start_of_image>", "eoi_token": "<end_of_image>", "image_token": "<image_soft_token>"},
    "internvl": {"start_image_token": "<img>", "end_image_token": "</img>", "context_image_token": "<IMG_CONTEXT>",
                 "video_token": "<video>"},
}


@pytest.mark.parametrize("model_type", sorted(TOKENS))
def test_generic_twin_builds_and_generates(model_type, tmp_path):
    import torch
    import transformers
    from PIL import Image

    from harness.adapters.twins.generic import build_twin

    inputs = {"model_type": model_type, "tokenizer": ROLES.get(model_type, {}), "chat_template": TEMPLATE,
              "special_tokens": TOKENS[model_type],
              "token_ids": {"vision_start_token_id": "<|vision_start|>", "vision_end_token_id": "<|vision_end|>"}}
    build_twin(tmp_path, inputs=inputs)
    processor = transformers.AutoProcessor.from_pretrained(tmp_path)
    model = transformers.AutoModelForImageTextToText.from_pretrained(tmp_path)
    heads = [m.head_dim for m in model.modules() if hasattr(m, "head_dim") and isinstance(m.head_dim, int)]
    assert heads and min(heads) >= 32
    batch = processor(text=[f"{processor.image_token} what?"], images=[[Image.new("RGB", (64, 48), "white")]],
                      return_tensors="pt")
    with torch.inference_mode():
        out = model.generate(**batch, max_new_tokens=4, min_new_tokens=4, do_sample=False)
    assert out.shape[1] - batch["input_ids"].shape[1] == 4
