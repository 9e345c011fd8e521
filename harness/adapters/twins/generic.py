"""A twin for any AutoModelForImageTextToText family, from its card alone (no per-family code).

Inputs (resolved by `twin_inputs` from the card's `twin:` section, so they are part of the spec):
- `config`: a copy of the hub's config.json (or none: the transformers config class defaults for
  `model_type`), shrunk here to toy size; architecture-defining keys (rope/M-RoPE sections, tie
  flags, patch/merge sizes) are kept, M-RoPE sections rescaled to the new head dimension;
- `chat_template`: the real template text (models/templates/<name>.jinja);
- `special_tokens` and `tokenizer` roles (bos/eos/pad; `add_bos_token: true` where the real tokenizer
  prepends BOS to every text), `token_ids` (config key -> token) where the
  processor does not name a token itself; `image_processor` / `processor_init` kwargs (toy image sizes).
Every attention head dimension is 32 (vLLM's CPU kernels reject 16).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from harness.errors import HarnessError

__all__ = ["TEXT", "VISION", "build_twin", "card_twin_inputs", "inputs_key", "twin_inputs"]

TEXT = {"hidden_size": 128, "intermediate_size": 256, "num_hidden_layers": 2, "num_attention_heads": 4, "head_dim": 32}
VISION = {"width": 64, "intermediate_size": 128, "layers": 2, "heads": 2, "head_dim": 32}
_ROLES = ("bos_token", "eos_token", "pad_token", "unk_token")
_DROP = ("architectures", "transformers_version", "torch_dtype", "dtype", "_name_or_path", "auto_map")


def card_twin_inputs(card) -> dict:
    """A card's generic-twin inputs, its files read from the config folder ({} for a card with its own builder)."""
    if not card.twin.get("builder", "").startswith("harness.adapters.twins.generic:"):
        return {}
    from harness.registry import config_root

    return twin_inputs(card, config_root())


def twin_inputs(card, root: Path) -> dict:
    """The card's twin files read into one dict (host side, no torch): what the builder needs."""
    twin = card.twin
    out = {k: twin[k] for k in ("model_type", "special_tokens", "tokenizer", "token_ids", "image_processor",
                                "processor_init", "generation") if k in twin}
    for key in ("config", "chat_template"):
        if key in twin:
            path = root / twin[key]
            if not path.is_file():
                raise HarnessError(f"{card.source_file}: twin.{key}: no file {path}")
            out[key] = json.loads(path.read_text()) if key == "config" else path.read_text()
    if "chat_template" not in out:
        raise HarnessError(f"{card.source_file}: twin.chat_template: the generic twin needs the real template file")
    if "config" not in out and "model_type" not in out:
        raise HarnessError(f"{card.source_file}: twin: name a config (hub config.json copy) or a model_type")
    return out


def inputs_key(inputs: dict) -> str:
    return hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()[:10]


def build_twin(out_dir: Path, seed: int = 0, inputs: dict | None = None) -> None:
    import torch
    import transformers

    inputs = dict(inputs or {})
    data = {k: v for k, v in (inputs.get("config") or {}).items() if k not in _DROP}
    model_type = data.pop("model_type", None) or inputs.get("model_type")
    tok = _tokenizer(inputs)
    config = transformers.AutoConfig.for_model(model_type, **data)
    _shrink(config, len(tok))
    derived = _tile_geometry(config)
    processor = _processor(model_type, tok, inputs, getattr(config, "vision_config", None), derived)
    _set_token_ids(config, processor, tok, inputs.get("token_ids") or {})
    torch.manual_seed(seed)
    model = transformers.AutoModelForImageTextToText.from_config(config)
    _give_logit_headroom(model)
    gen = model.generation_config
    gen.bos_token_id, gen.pad_token_id = tok.bos_token_id, tok.pad_token_id
    generation = dict(inputs.get("generation") or {})
    gen.eos_token_id = _ids(tok, generation.pop("eos_tokens", None)) or tok.eos_token_id
    gen.update(**generation)  # the rest as the hub's generation_config.json has it (sampling, as most do)
    model.save_pretrained(out_dir)
    processor.save_pretrained(out_dir)


def _give_logit_headroom(model) -> None:
    """The trained-scale head of twins/common.py, also for tied embeddings (Gemma 3, InternVL3's Qwen2.5).

    Scaling a tied head scales the input embeddings too: they then swamp every layer's output in the
    residual stream and the twin only repeats its input (loss 25 at step 1, nothing learnt in a smoke
    fine-tune). The final norm's gain scales the logits alone; Gemma's norm stores (gain - 1).
    """
    import torch

    from harness.adapters.twins.common import HEAD_SCALE, give_head_trained_scale

    head, embed = model.get_output_embeddings(), model.get_input_embeddings()
    norm = getattr(model.get_decoder(), "norm", None)
    if head.weight is not embed.weight or norm is None:
        give_head_trained_scale(model)
        return
    with torch.no_grad():
        offset = bool(torch.all(norm.weight == 0))  # zero-initialised: the (1 + weight) form
        norm.weight.copy_((1 + norm.weight) * HEAD_SCALE - 1 if offset else norm.weight * HEAD_SCALE)


def _ids(tok, names):
    return [tok.convert_tokens_to_ids(n) for n in names] if names else None


def _tokenizer(inputs: dict):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    from harness.adapters.twins.common import train_byte_bpe
    from harness.data import SYNTH_VOCAB_TEXT

    vocab, merges = train_byte_bpe(list(SYNTH_VOCAB_TEXT) + ["You are a helpful assistant.", "user", "assistant"],
                                   vocab_size=700)
    backend = Tokenizer(models.BPE(vocab=vocab, merges=merges))
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    given = {"eos_token": "<|endoftext|>", **(inputs.get("tokenizer") or {})}
    add_bos = bool(given.pop("add_bos_token", False))  # Gemma's tokenizer prepends BOS to every text
    roles = {k: v for k, v in given.items() if k in _ROLES}
    # Named extras some processors read off the tokenizer (Gemma 3's boi_token, InternVL's start_image_token).
    extra = {k: v for k, v in given.items() if k not in _ROLES}
    tok = PreTrainedTokenizerFast(tokenizer_object=backend, extra_special_tokens=extra)
    specials = list(dict.fromkeys([*given.values(), *(inputs.get("special_tokens") or [])]))
    tok.add_special_tokens({"additional_special_tokens": specials})
    for role, token in roles.items():
        setattr(tok, role, token)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    if add_bos:
        from tokenizers import processors

        bos = tok.bos_token
        tok.backend_tokenizer.post_processor = processors.TemplateProcessing(
            single=f"{bos} $A", pair=f"{bos} $A {bos} $B", special_tokens=[(bos, tok.bos_token_id)])
    return tok


def _shrink(config, vocab_size: int) -> None:
    text = config.get_text_config()
    heads, kv = getattr(text, "num_attention_heads", 1), getattr(text, "num_key_value_heads", None)
    for key, value in TEXT.items():
        if key != "head_dim" or hasattr(text, "head_dim"):
            setattr(text, key, value)
    if kv is not None:  # keep grouped-query attention grouped
        text.num_key_value_heads = TEXT["num_attention_heads"] if kv >= heads else 2
    text.vocab_size = vocab_size
    if getattr(text, "layer_types", None):
        text.layer_types = _keep_kinds(text.layer_types, TEXT["num_hidden_layers"])
    if hasattr(text, "max_window_layers"):
        text.max_window_layers = TEXT["num_hidden_layers"]
    _rescale_mrope(text, config.model_type)
    vision = getattr(config, "vision_config", None)
    if vision is not None:
        _shrink_vision(vision, TEXT["hidden_size"])
    if hasattr(config, "vocab_size") and config is not text:
        config.vocab_size = vocab_size


def _keep_kinds(layer_types: list, n: int) -> list:
    """`n` layers that still hold every kind of layer the model has (e.g. sliding and full attention)."""
    kinds = list(dict.fromkeys(layer_types))[-n:]
    return (kinds + [layer_types[-1]] * n)[:n]


def _rescale_mrope(text, model_type: str) -> None:
    for attr in ("rope_parameters", "rope_scaling"):
        rope = getattr(text, attr, None)
        section = rope.get("mrope_section") if isinstance(rope, dict) else None
        if not section and attr == "rope_parameters" and isinstance(rope, dict) and _uses_mrope(model_type):
            section = [16, 24, 24]  # the modeling code's fallback (Qwen's published split, head_dim 128)
        if section:  # the sections (time, height, width) must sum to head_dim / 2
            half = TEXT["head_dim"] // 2
            scaled = [max(1, round(s * half / sum(section))) for s in section]
            scaled[-1] += half - sum(scaled)
            setattr(text, attr, {**rope, "mrope_section": scaled})


def _uses_mrope(model_type: str) -> bool:
    import importlib
    import inspect

    try:
        module = importlib.import_module(f"transformers.models.{model_type}.modeling_{model_type}")
    except ImportError:
        return False
    return "mrope_section" in inspect.getsource(module)


def _shrink_vision(vision, text_hidden: int) -> None:
    keys = vision.to_dict()
    width_key = "embed_dim" if "embed_dim" in keys else "hidden_size"
    setattr(vision, width_key, VISION["width"])
    if width_key == "embed_dim" and "hidden_size" in keys:  # Qwen2-VL: hidden_size is the merger's output
        vision.hidden_size = text_hidden
    if "out_hidden_size" in keys:
        vision.out_hidden_size = text_hidden
    for key in ("num_hidden_layers", "depth"):
        if key in keys:
            setattr(vision, key, VISION["layers"])
    for key in ("num_attention_heads", "num_heads"):
        if key in keys:
            setattr(vision, key, VISION["heads"])
    if "head_dim" in keys:
        vision.head_dim = VISION["head_dim"]
    if "intermediate_size" in keys:
        vision.intermediate_size = VISION["intermediate_size"]
    if "fullatt_block_indexes" in keys:
        vision.fullatt_block_indexes = [VISION["layers"] - 1]
    if "deepstack_visual_indexes" in keys:
        vision.deepstack_visual_indexes = [0]


TILE_TOKENS_PER_SIDE = 2  # a twin tile is 2x2 image tokens


def _tile_geometry(config) -> dict:
    """Shrink a fixed-tile vision tower consistently; the processor kwargs that match it.

    Families with a fixed tile (SigLIP-style `image_size`) turn its patch grid into tokens by pooling
    (Gemma 3: `mm_tokens_per_image`) or pixel shuffle (InternVL `downsample_ratio`, Idefics3/SmolVLM
    `scale_factor`): tile = patch * tokens-per-side * factor, so every division stays exact. The real
    patch size is kept. Dynamic-resolution towers (Qwen) have no `image_size`: nothing to do.
    Returns {"image_processor": kwargs, "processor": kwargs}; the card's own kwargs win over these.
    """
    vision = getattr(config, "vision_config", None)
    if vision is None or not hasattr(vision, "image_size"):
        return {}
    patch = vision.patch_size[0] if isinstance(vision.patch_size, (list, tuple)) else vision.patch_size
    side = TILE_TOKENS_PER_SIDE
    if hasattr(config, "mm_tokens_per_image"):
        factor = 2  # the average-pool kernel
        config.mm_tokens_per_image = side * side
    elif hasattr(config, "downsample_ratio"):
        factor = round(1 / config.downsample_ratio)
    elif hasattr(config, "scale_factor"):
        factor = int(config.scale_factor)
    else:
        return {}
    tile = patch * side * factor
    vision.image_size = [tile, tile] if isinstance(vision.image_size, (list, tuple)) else tile
    if hasattr(config, "image_seq_length"):
        config.image_seq_length = side * side
    image = ({"size": {"longest_edge": 2 * tile}, "max_image_size": {"longest_edge": tile}}
             if hasattr(config, "scale_factor") else {"size": {"height": tile, "width": tile}})
    return {"image_processor": image, "processor": {"image_seq_length": side * side, "image_seq_len": side * side}}


# Image-processor attribute <- vision-config key: the processor must cut patches the tower expects.
_PATCHING = {"patch_size": "patch_size", "temporal_patch_size": "temporal_patch_size",
             "merge_size": "spatial_merge_size"}


def _processor(model_type: str, tok, inputs: dict, vision, derived: dict):
    import inspect

    import transformers
    from transformers.models.auto import image_processing_auto, processing_auto, video_processing_auto

    name = processing_auto.PROCESSOR_MAPPING_NAMES.get(model_type)
    if not name:
        raise HarnessError(f"twin: transformers names no processor class for model_type '{model_type}'")
    parts = {"tokenizer": tok}
    for key, mapping in (("image_processor", image_processing_auto.IMAGE_PROCESSOR_MAPPING_NAMES),
                         ("video_processor", video_processing_auto.VIDEO_PROCESSOR_MAPPING_NAMES)):
        names = mapping.get(model_type)
        if names:
            cls_name = names.get("torchvision") or next(iter(names.values())) if isinstance(names, dict) else names
            kwargs = inputs.get(key) or {}
            part = getattr(transformers, cls_name)(**{**derived.get(key, {}), **kwargs})
            for attr, source in _PATCHING.items():
                if hasattr(part, attr) and attr not in kwargs and hasattr(vision, source):
                    setattr(part, attr, getattr(vision, source))
            parts[key] = part
    cls = getattr(transformers, name)
    accepted = inspect.signature(cls.__init__).parameters
    init = {k: v for k, v in derived.get("processor", {}).items() if k in accepted}
    return cls(**parts, chat_template=inputs["chat_template"], **{**init, **(inputs.get("processor_init") or {})})


def _set_token_ids(config, processor, tok, named: dict) -> None:
    """Point the config's token-id keys at the twin tokenizer's ids (real ids exceed the toy vocabulary)."""
    text = config.get_text_config()
    for cfg in {id(config): config, id(text): text}.values():
        for key in list(cfg.to_dict()):
            if not key.endswith(("_token_id", "_token_index")) or key in ("bos_token_id", "eos_token_id",
                                                                           "pad_token_id"):
                continue
            stem = key.rsplit("_token_", 1)[0]
            # The tokenizer's named token first: Gemma 3's processor calls its boi token `image_token`,
            # while the config's image_token_index is the soft token the tokenizer names image_token.
            token = named.get(key) or _named(tok, f"{stem}_token") or getattr(processor, f"{stem}_token", None)
            if isinstance(token, str):
                setattr(cfg, key, tok.convert_tokens_to_ids(token))
        for role in ("bos", "eos", "pad"):
            if hasattr(cfg, f"{role}_token_id"):
                setattr(cfg, f"{role}_token_id", getattr(tok, f"{role}_token_id"))


def _named(tok, attr: str):
    try:
        value = getattr(tok, attr, None)
    except Exception:  # noqa: BLE001 - some tokenizers raise on unknown special-token names
        return None
    return value if isinstance(value, str) else None
