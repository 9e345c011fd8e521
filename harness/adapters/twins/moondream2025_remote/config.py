"""Twin sizes and token templates (the release's `config.py` dataclasses, toy values)."""

from dataclasses import dataclass, field


@dataclass(frozen=True)
class TextConfig:
    dim: int = 64
    ff_dim: int = 128
    n_layers: int = 2
    vocab_size: int = 600
    max_context: int = 256
    n_heads: int = 4
    prefix_attn: int = 17  # BOS + 16 image positions attend bidirectionally (release: 730)


@dataclass(frozen=True)
class VisionConfig:
    enc_dim: int = 32
    enc_patch_size: int = 7
    crop_size: int = 28


@dataclass(frozen=True)
class TokenizerConfig:
    bos_id: int = 0
    eos_id: int = 0
    answer_id: int = 3
    templates: dict = field(default_factory=lambda: {"query": {"prefix": [1, 4, 2], "suffix": [3]}})


@dataclass(frozen=True)
class MoondreamConfig:
    text: TextConfig = field(default_factory=TextConfig)
    vision: VisionConfig = field(default_factory=VisionConfig)
    tokenizer: TokenizerConfig = field(default_factory=TokenizerConfig)
    tokenizer_json: str = ""

    @classmethod
    def from_dict(cls, data: dict):
        return cls(
            text=TextConfig(**data.get("text", {})),
            vision=VisionConfig(**data.get("vision", {})),
            tokenizer=TokenizerConfig(**data.get("tokenizer", {})),
            tokenizer_json=data.get("tokenizer_json", ""),
        )
