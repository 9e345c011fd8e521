"""Frozen descriptions of what to run: model cards, benchmarks, presets and single runs.

These are plain data (no torch), so planning, storing and rendering work on a host without ML packages.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = [
    "DEFAULT_RECIPE",
    "SCHEMA_VERSION",
    "VARIANTS",
    "BenchSpec",
    "Decoding",
    "FinetuneSpec",
    "ModelCard",
    "Preset",
    "RunSpec",
    "canonical_json",
]

# The layout version of the stored records; the rule for bumping it is in harness/records/__init__.py.
SCHEMA_VERSION = 2

# base: the released weights; finetuned: our fine-tune; study: the original study's published fine-tune.
VARIANTS = ("base", "finetuned", "study")

# The recipe a card's `finetune:` section holds; other named recipes in `recipes:` override it.
DEFAULT_RECIPE = "official"


def canonical_json(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)


@dataclass(frozen=True)
class Decoding:
    """Generation settings; identical for every variant of a model so comparisons are fair."""

    max_new_tokens: int = 16
    min_new_tokens: int = 0
    num_beams: int = 1
    do_sample: bool = False
    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    repetition_penalty: float = 1.0

    @classmethod
    def from_dict(cls, data: dict | None) -> Decoding:
        data = dict(data or {})
        unknown = set(data) - set(cls.__dataclass_fields__)
        if unknown:
            from harness.errors import HarnessError

            raise HarnessError(f"decoding: unknown setting(s) {sorted(unknown)}")
        return cls(**data)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class ModelCard:
    """A declarative model card (models/<name>.yaml)."""

    name: str
    display_name: str
    family: str
    adapter: str  # "module:Class"
    hub_id: str
    revision: str
    dtype: str = "bfloat16"
    trust_remote_code: bool = False
    image: str = ""  # docker image name, without tag
    environment: dict = field(default_factory=dict)  # pinned packages: {"transformers": "==5.24.0"}
    environment_notes: dict = field(default_factory=dict)  # why a pin exists, per package (harness doctor)
    generation: dict = field(default_factory=dict)  # Decoding fields that differ from the benchmark's
    processor: dict = field(default_factory=dict)  # processor kwargs (image size bounds, ...)
    finetune: dict = field(default_factory=dict)  # the default ("official") fine-tune recipe
    # Named recipes: {"official": {"source": ...}, "study": {"source": ..., <keys overriding finetune>}}
    recipes: dict = field(default_factory=dict)
    twin: dict = field(default_factory=dict)  # {"builder": "module:function", "finetune": {...overrides}}
    study: dict = field(default_factory=dict)  # {"hub_id", "revision", "kind": "adapter"|"full"}
    supports: dict = field(default_factory=dict)  # what the adapter can do, for the README/models table
    source_file: str = ""


@dataclass(frozen=True)
class BenchSpec:
    """A benchmark suite (benchmarks/<name>.yaml): data, prompt, metrics and decoding."""

    name: str
    version: str
    dataset: str
    dataset_revision: str | None
    split: str
    prompt_suffix: str
    metrics: tuple[str, ...]
    decoding: Decoding
    source_file: str = ""


@dataclass(frozen=True)
class Preset:
    """A named set of overrides (presets/<name>.yaml), e.g. `smoke`: twins, synthetic data, CPU."""

    name: str
    description: str
    use_twins: bool
    device: str | None
    dtype: str | None
    synthetic: dict  # {"seed": int, "sizes": {...}} or {} for real data
    bench: dict  # overrides of BenchSpec fields (e.g. decoding)
    finetune: dict  # overrides of every card's fine-tune recipe
    paths: dict  # default results / checkpoints / leaderboard locations
    banner: str  # first lines of any leaderboard made with this preset
    source_file: str = ""


class _HashedSpec:
    """Serialisation and the identity hash, shared by the specs that name their outputs.

    No file locations go into a spec: the same run in a container and on the host is the same run.
    """

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict):
        known = cls.__dataclass_fields__
        return cls(**{k: v for k, v in data.items() if k in known})

    @property
    def config_hash(self) -> str:
        return hashlib.sha256(canonical_json(self.to_dict()).encode()).hexdigest()[:12]


@dataclass(frozen=True)
class RunSpec(_HashedSpec):
    """One benchmark run: a model variant on a data split with fixed settings.

    Everything that changes the numbers is in here, so its hash names the run and lets
    `harness bench` skip finished work and resume interrupted work.
    """

    model: str
    variant: str
    benchmark: str
    benchmark_version: str
    dataset: str
    dataset_revision: str | None
    split: str
    limit: int | None
    batch_size: int
    preset: str | None
    decoding: dict
    prompt_suffix: str
    metrics: tuple[str, ...]
    dtype: str
    device: str
    seed: int
    model_id: str  # hub id, or "twin:<name>" for an offline twin
    model_revision: str | None
    adapter_id: str | None  # fine-tune record id or published hub id; None for the base variant
    adapter_revision: str | None = None
    merge_adapter: bool = False  # fold a PEFT adapter into the base weights before timing (faster decode)
    schema_version: int = SCHEMA_VERSION

    def to_dict(self) -> dict:
        data = asdict(self)
        data["metrics"] = list(self.metrics)
        return data

    @classmethod
    def from_dict(cls, data: dict) -> RunSpec:
        return super().from_dict({**data, "metrics": tuple(data.get("metrics", ()))})

    @property
    def run_id(self) -> str:
        return f"{self.model}-{self.variant}-bs{self.batch_size}-{self.config_hash}"


@dataclass(frozen=True)
class FinetuneSpec(_HashedSpec):
    """One fine-tune: a model, its training data and the fully merged recipe."""

    model: str
    model_id: str
    model_revision: str | None
    dataset: str
    dataset_revision: str | None
    split: str
    prompt_suffix: str
    recipe: dict
    dtype: str
    device: str
    seed: int
    preset: str | None
    recipe_name: str = DEFAULT_RECIPE  # the card's named recipe the `recipe` dict starts from
    schema_version: int = SCHEMA_VERSION

    @property
    def adapter_id(self) -> str:
        return f"{self.model}-ft-{self.config_hash}"
