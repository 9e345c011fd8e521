"""Moondream2 twins: local remote-code packages loaded through `trust_remote_code=True`.

`build_twin` (2024 family, revision 2024-07-23's API): copies the sources in `moondream_remote/` next to
a `config.json` whose `auto_map` names them, plus random toy weights and a byte-level BPE tokenizer
with the release's conventions (bos = eos = unk = `<|endoftext|>`, no pad token). It loads with
`AutoModelForCausalLM.from_pretrained(path, trust_remote_code=True)` + `AutoTokenizer`, like the hub repo.

`build_twin_2025` (2025 family, `HfMoondream`): see `moondream2025_remote/`.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from harness.adapters.twins.common import TOY_TEXT_SIZE, give_head_trained_scale, train_byte_bpe
from harness.data import SYNTH_VOCAB_TEXT

__all__ = ["build_twin", "build_twin_2025", "prefix_auto_map"]

REMOTE_2024 = Path(__file__).with_name("moondream_remote")
REMOTE_2025 = Path(__file__).with_name("moondream2025_remote")
PROMPT_TEXT = ["Question:", "Answer:", "Answer the question using a single word or phrase."]


def _tokenizer(corpus_extra: list[str]):
    # Built from a `tokenizers` object: the one constructor that transformers 4.49 (the moondream
    # image) and 5.x (the host) share; GPT2Tokenizer(vocab=, merges=) exists in 5.x only.
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab, merges = train_byte_bpe(list(SYNTH_VOCAB_TEXT) + PROMPT_TEXT + corpus_extra, vocab_size=600)
    backend = Tokenizer(models.BPE(vocab=vocab, merges=merges))
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    tok = PreTrainedTokenizerFast(tokenizer_object=backend)
    tok.add_tokens(["<|endoftext|>"], special_tokens=True)
    tok.bos_token = tok.eos_token = tok.unk_token = "<|endoftext|>"
    return tok


def _copy_sources(src: Path, out_dir: Path) -> None:
    for path in sorted(src.glob("*.py")):
        if path.name != "__init__.py":
            shutil.copyfile(path, out_dir / path.name)


def build_twin(out_dir: Path, seed: int = 0) -> None:
    import importlib

    import torch

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tok = _tokenizer([])
    eos = tok.convert_tokens_to_ids("<|endoftext|>")
    # Import the copied sources as one throw-away package, so the saved weights come from exactly the
    # classes transformers will load (the harness never imports them as its own modules).
    name = f"_harness_moondream_twin_{abs(hash(str(out_dir)))}"
    _load_sources(REMOTE_2024, out_dir, name)
    try:
        config_module = importlib.import_module(f"{name}.configuration_moondream")
        model_module = importlib.import_module(f"{name}.moondream")
        config = config_module.MoondreamConfig(
            text_config={
                "vocab_size": len(tok),
                **TOY_TEXT_SIZE,
                "max_position_embeddings": 512,
                "partial_rotary_factor": 0.5,
                "bos_token_id": eos,
                "eos_token_id": eos,
            },
            vision_config={"crop_size": 28, "patch_size": 7, "hidden_size": 64, "num_layers": 1, "num_heads": 2},
            auto_map={"AutoConfig": "configuration_moondream.MoondreamConfig",
                      "AutoModelForCausalLM": "moondream.Moondream"},
            architectures=["Moondream"],
        )
        torch.manual_seed(seed)
        model = model_module.Moondream(config)
        give_head_trained_scale(model.text_model)  # a random 0.02 head caps every logit near 1
        model.save_pretrained(out_dir)
    finally:
        _unload_sources(out_dir, name)
    tok.save_pretrained(out_dir)


def _load_sources(src: Path, out_dir: Path, name: str):
    """Copy remote-code sources and import them as a throw-away package named `name`."""
    import importlib.util
    import sys

    _copy_sources(src, out_dir)
    (out_dir / "__init__.py").write_text("")
    spec = importlib.util.spec_from_file_location(name, out_dir / "__init__.py",
                                                  submodule_search_locations=[str(out_dir)])
    sys.modules[name] = importlib.util.module_from_spec(spec)


def _unload_sources(out_dir: Path, name: str) -> None:
    import sys

    for key in [k for k in sys.modules if k == name or k.startswith(name + ".")]:
        del sys.modules[key]
    (out_dir / "__init__.py").unlink(missing_ok=True)


def build_twin_2025(out_dir: Path, seed: int = 0) -> None:
    """HfMoondream twin; its `tokenizers.Tokenizer` travels inside config.json (the release: hub repo)."""
    import importlib

    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    vocab, merges = train_byte_bpe(list(SYNTH_VOCAB_TEXT) + PROMPT_TEXT, vocab_size=600)
    tok = Tokenizer(models.BPE(vocab=vocab, merges=merges))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    specials = ["<|endoftext|>", "<|md_reserved_0|>", "<|md_reserved_1|>", "<|md_reserved_2|>", "<|query|>"]
    tok.add_special_tokens(specials)
    ids = {t: tok.token_to_id(t) for t in specials}
    eos = ids["<|endoftext|>"]
    moondream_config = {
        "text": {"dim": 64, "ff_dim": 128, "n_layers": 2, "vocab_size": tok.get_vocab_size(), "max_context": 256,
                 "n_heads": 4, "prefix_attn": 1 + (28 // 7) ** 2},
        "vision": {"enc_dim": 32, "enc_patch_size": 7, "crop_size": 28},
        "tokenizer": {"bos_id": eos, "eos_id": eos, "answer_id": ids["<|md_reserved_2|>"],
                      "templates": {"query": {"prefix": [ids["<|md_reserved_0|>"], ids["<|query|>"],
                                                         ids["<|md_reserved_1|>"]],
                                              "suffix": [ids["<|md_reserved_2|>"]]}}},
        "tokenizer_json": tok.to_str(),
    }
    name = f"_harness_moondream2025_twin_{abs(hash(str(out_dir)))}"
    _load_sources(REMOTE_2025, out_dir, name)
    try:
        hf = importlib.import_module(f"{name}.hf_moondream")
        config = hf.HfConfig(config=moondream_config, architectures=["HfMoondream"],
                             auto_map={"AutoConfig": "hf_moondream.HfConfig",
                                       "AutoModelForCausalLM": "hf_moondream.HfMoondream"})
        torch.manual_seed(seed)
        model = hf.HfMoondream(config)
        with torch.no_grad():
            model.model.text["lm_head"].weight.mul_(10.0)  # trained-scale head, as twins/common.py explains
        model.save_pretrained(out_dir)
    finally:
        _unload_sources(out_dir, name)


def prefix_auto_map(folder: Path, repo_id: str) -> None:
    """Rewrite `folder/config.json`'s auto_map as transformers 4.x does when loading by hub id.

    `PretrainedConfig.from_pretrained(<hub id>)` prefixes every entry with `<repo_id>--` and
    `save_pretrained` keeps it, so a checkpoint pushed after loading the base by id (the study's
    `krowiemlekommm/PJN_moondream`) names `vikhyatk/moondream2--moondream.Moondream`: on reload the
    code comes from that repo, at `code_revision`, not from the .py files beside the weights.
    """
    import json

    path = Path(folder) / "config.json"
    config = json.loads(path.read_text())
    config["auto_map"] = {key: value if "--" in value else f"{repo_id}--{value}"
                          for key, value in config["auto_map"].items()}
    path.write_text(json.dumps(config, indent=2) + "\n")
