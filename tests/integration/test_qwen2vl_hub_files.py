"""Qwen2-VL twin in the hub's file layout: legacy adapter keys, legacy pixel bounds, two stop tokens."""

from __future__ import annotations

import copy
import json
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from PIL import Image

from harness.data.example import Example
from harness.errors import HarnessError
from harness.specs import Decoding
from tests.helpers import twin_adapter

SUFFIX = "\nAnswer the question using a single word or phrase."


def _open(cache, **kwargs):

    return twin_adapter("qwen2vl", Path(cache), **kwargs)


def _example(width: int, height: int, query: str = "What is the highest value?") -> Example:
    return Example(id=f"{width}x{height}", query=query, labels=("1",), image_id=f"{width}x{height}", meta={},
                   image_loader=lambda: Image.new("RGB", (width, height), (200, 60, 60)))


def _twin_bounds(card) -> dict:
    """The twin card's pixel bounds as the YAML file states them, in either spelling (legacy keys or `size`).

    Read from the file, not the loaded card: a processor once wrote the hub file's bounds into the
    card's own `size` dict, which made the card agree with whatever was in effect.
    """
    import yaml

    from harness.registry import config_root

    kwargs = yaml.safe_load((config_root() / "models" / f"{card.name}.yaml").read_text())["twin"]["processor"]
    size = kwargs.get("size", {})
    return {"min_pixels": kwargs.get("min_pixels", size.get("shortest_edge")),
            "max_pixels": kwargs.get("max_pixels", size.get("longest_edge"))}


@pytest.fixture(scope="module")
def qwen(harness_cache):
    return _open(harness_cache)


@pytest.fixture(scope="module")
def adapters(harness_cache, tmp_path_factory):
    """A trained-looking LoRA saved by peft (5.x keys) and the same file rewritten to the < 4.52 keys."""
    from peft import LoraConfig, get_peft_model

    from harness.adapters.twins.qwen2vl import to_legacy_adapter_keys

    root = tmp_path_factory.mktemp("qwen2vl-adapters")
    base = _open(harness_cache)
    # Text q/v as the study's run, plus the vision tower's qkv so the `visual.*` keys are covered too.
    config = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj", "qkv"], task_type="CAUSAL_LM")
    model = get_peft_model(base.model, config)
    torch.manual_seed(3)
    with torch.no_grad():  # B starts at 0 (init_lora_weights=True, as the hub's config says): "train" it
        for name, param in model.named_parameters():
            if "lora_B" in name:
                param.normal_(std=0.5)
    model.save_pretrained(root / "new")
    model.save_pretrained(root / "legacy")
    to_legacy_adapter_keys(root / "legacy")
    return root


def _lora_weights(adapter) -> dict[str, torch.Tensor]:
    return {n: p.detach().clone() for n, p in adapter.model.named_parameters() if "lora_" in n}


def _logits(adapter, example) -> torch.Tensor:
    batch = adapter.prepare([example], SUFFIX)
    with torch.no_grad():
        return adapter.model(**batch.inputs).logits[0, -1]


def test_legacy_adapter_file_has_the_hub_layout(adapters):
    from safetensors import safe_open

    with safe_open(adapters / "legacy" / "adapter_model.safetensors", "pt") as f:
        keys = set(f.keys())
    assert "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight" in keys
    assert "base_model.model.visual.blocks.0.attn.qkv.lora_B.weight" in keys
    assert not any("language_model" in k or k.startswith("base_model.model.model.visual.") for k in keys)


def test_legacy_adapter_is_applied(harness_cache, adapters):
    new = _open(harness_cache, adapter_path=str(adapters / "new"))
    legacy = _open(harness_cache, adapter_path=str(adapters / "legacy"))
    want, got = _lora_weights(new), _lora_weights(legacy)
    assert set(got) == set(want) and any("visual" in n for n in got)
    for name, value in want.items():
        assert torch.equal(got[name], value), name
    assert all(v.abs().sum() > 0 for n, v in got.items() if "lora_B" in n)  # not left at init (B = 0)
    example = _example(120, 90)
    base_logits = _logits(_open(harness_cache), example)
    legacy_logits = _logits(legacy, example)
    assert torch.allclose(legacy_logits, _logits(new, example))
    assert not torch.allclose(legacy_logits, base_logits, atol=1e-3)


def test_adapter_with_a_wrong_key_fails_naming_it(harness_cache, adapters, tmp_path):
    import shutil

    from safetensors.torch import load_file, save_file

    bad = tmp_path / "bad"
    shutil.copytree(adapters / "legacy", bad)
    path = bad / "adapter_model.safetensors"
    state = load_file(path)
    wrong = "base_model.model.model.layers.1.self_attn.v_proj.lora_A.weight"
    state[wrong.replace("v_proj", "v_prj")] = state.pop(wrong)
    save_file(state, path, metadata={"format": "pt"})
    with pytest.raises(HarnessError) as err:
        _open(harness_cache, adapter_path=str(bad))
    message = str(err.value)
    assert "\n" not in message
    assert "layers.1.self_attn.v_prj.lora_A.weight" in message  # the file's stray key
    assert "layers.1.self_attn.v_proj.lora_A.weight" in message  # and the one the model missed


def test_twin_hub_files_use_the_legacy_layout(qwen):
    folder = Path(qwen.request.source)
    assert not (folder / "processor_config.json").exists()
    pre = json.loads((folder / "preprocessor_config.json").read_text())
    twin_bounds = _twin_bounds(qwen.card)
    assert "size" not in pre
    assert pre["min_pixels"] < twin_bounds["min_pixels"] and pre["max_pixels"] > twin_bounds["max_pixels"]


@pytest.mark.parametrize("width,height", [(30, 20), (422, 359), (2000, 1500)])
def test_image_tokens_follow_the_card_bounds(qwen, width, height):
    from transformers.models.qwen2_vl.image_processing_qwen2_vl import smart_resize

    bounds = _twin_bounds(qwen.card)
    h, w = smart_resize(height, width, factor=28, min_pixels=bounds["min_pixels"], max_pixels=bounds["max_pixels"])
    expected = (h // 28) * (w // 28)
    assert bounds["min_pixels"] // 784 <= expected <= bounds["max_pixels"] // 784
    prepared = qwen.prepare([_example(width, height)], SUFFIX)
    pad = qwen.tokenizer.convert_tokens_to_ids("<|image_pad|>")
    assert int((prepared.inputs["input_ids"] == pad).sum()) == expected
    assert prepared.image_tokens == [expected + 2]  # + <|vision_start|> and <|vision_end|>
    # The bounds in effect are read back from the processor and go into the result manifest.
    assert qwen.pixel_bounds() == bounds
    assert qwen.environment()["pixel_bounds"] == bounds


def test_bounds_lost_to_the_hub_file_are_an_error(qwen):
    from harness.adapters.qwen2vl import Qwen2VLAdapter

    bounds = _twin_bounds(qwen.card)
    size = {"shortest_edge": bounds["min_pixels"], "longest_edge": bounds["max_pixels"]}
    request = replace(qwen.request, processor_kwargs={"size": size})
    with pytest.raises(HarnessError, match=r"^qwen2vl: image processor of .* applies pixel bounds .*min_pixels / "
                                           r"max_pixels in the card's processor section$"):
        Qwen2VLAdapter(qwen.card, request).load()


def test_stop_tokens_are_both_end_tokens(qwen):
    tok = qwen.tokenizer
    both = {tok.convert_tokens_to_ids("<|im_end|>"), tok.convert_tokens_to_ids("<|endoftext|>")}
    assert tok.eos_token == "<|im_end|>"  # as the release: the tokenizer names one, generation_config both
    assert set(qwen.model.generation_config.eos_token_id) == both
    assert set(qwen.stop_token_ids()) == both
    assert qwen.environment()["stop_token_ids"] == sorted(both)


def _greedy(adapter, example, max_new_tokens: int) -> list[int]:
    """Argmax decoding by hand: one full forward per token, no cache, no logits processors."""
    inputs = dict(adapter.prepare([example], SUFFIX).inputs)
    stop, out = set(adapter.stop_token_ids()), []
    with torch.no_grad():
        for _ in range(max_new_tokens):
            token = int(adapter.model(**inputs).logits[0, -1].argmax())
            out.append(token)
            if token in stop:
                break
            # Extend every per-position input: the token, its mask, and its (text) modality type.
            extra = {"input_ids": token, "attention_mask": 1, "mm_token_type_ids": 0}
            for key, value in extra.items():
                if key in inputs:
                    inputs[key] = torch.cat([inputs[key], torch.tensor([[value]], dtype=inputs[key].dtype)], dim=1)
    return out


def test_runs_decode_greedily_despite_the_hub_sampling_config(qwen):
    from tests.helpers import plan_runs

    config = qwen.model.generation_config
    assert config.do_sample and config.repetition_penalty == 1.05 and config.top_k == 1  # the hub's file
    decoding = Decoding.from_dict(plan_runs(["qwen2vl"], preset="smoke")[0].decoding)
    saved = copy.deepcopy(config)
    try:
        # Exaggerate the hub's sampling so any of it leaking into a run changes the tokens.
        config.update(temperature=50.0, top_k=50, top_p=1.0, repetition_penalty=100.0)
        for example in (_example(60, 40, "Which bar is red?"), _example(90, 70)):
            torch.manual_seed(0)
            new_tokens = qwen.generate(qwen.prepare([example], SUFFIX), decoding).tokens[0].tolist()
            want = _greedy(qwen, example, decoding.max_new_tokens)
            assert new_tokens[: len(want)] == want
    finally:
        qwen.model.generation_config = saved
