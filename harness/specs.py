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
    "FinetuneRecipe",
    "LoraSettings",
    "ModelFacts",
    "RunSpec",
    "canonical_json",
    "spec_from_record",
]

# The layout version of the stored records; the rule for bumping it is in harness/records/__init__.py.
SCHEMA_VERSION = 4

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
    gated: bool = False  # the hub repo needs an accepted licence and HF_TOKEN to download (real weights only)
    unpinned: str = ""  # why `revision` is not a commit yet (harness doctor warns until `harness pin` runs)
    image: str = ""  # docker image name, without tag
    environment: dict = field(default_factory=dict)  # pinned packages: {"transformers": "==5.24.0"}
    environment_notes: dict = field(default_factory=dict)  # why a pin exists, per package (harness doctor)
    generation: dict = field(default_factory=dict)  # Decoding fields that differ from the benchmark's
    processor: dict = field(default_factory=dict)  # processor kwargs (image size bounds, ...)
    attn_implementation: str | None = None  # e.g. sdpa, eager, flash_attention_2 (None: the library's choice)
    finetune: dict = field(default_factory=dict)  # the default ("official") fine-tune recipe
    # Named recipes: {"official": {"source": ...}, "study": {"source": ..., <keys overriding finetune>}}
    recipes: dict = field(default_factory=dict)
    twin: dict = field(default_factory=dict)  # {"builder": "module:function", "finetune": {...overrides}}
    chat: dict = field(default_factory=dict)  # ChatAdapter settings (adapters/chat.py CHAT_KEYS)
    study: dict = field(default_factory=dict)  # {"hub_id", "revision", "kind": "adapter"|"full"}
    supports: dict = field(default_factory=dict)  # what the adapter can do, for the README/models table
    # Inference backends other than transformers: {vllm: {environment: {...}, image: ..., engine: {...}}}
    # (their own pins and image; `supports: backends:` says which ones the model runs on).
    backends: dict = field(default_factory=dict)
    # Published reference scores: [{benchmark, metric, value, subset?, source, note?}] (leaderboard only)
    published: list = field(default_factory=list)
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
    # Data format (harness/data/cards.py): {image|query|label: the data set's column}, how labels are
    # stored, and {column, names: {value: name}} for sub-scores.
    columns: dict = field(default_factory=dict)
    label_shape: str = "list"
    subsets: dict = field(default_factory=dict)
    # Named prompt suffixes (the kits disagree); `prompt_suffix` is the text of `default_prompt`.
    prompts: dict = field(default_factory=dict)
    default_prompt: str = "default"
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


# Typed pieces of a spec. Each rejects unknown keys with a one-line error naming the key and where it came
# from, so a misspelled YAML key or override never silently changes (or fails to change) a number.


def _reject_unknown(cls, data: dict, where: str) -> None:
    unknown = sorted(set(data) - set(cls.__dataclass_fields__))
    if unknown:
        from harness.errors import HarnessError

        known = ", ".join(sorted(cls.__dataclass_fields__))
        raise HarnessError(f"{where}: unknown key '{unknown[0]}' (known: {known})")


@dataclass(frozen=True)
class LoraSettings:
    """LoRA hyper-parameters. `target_modules` None means the adapter's default targets."""

    r: int = 8
    alpha: int = 16
    dropout: float = 0.05
    target_modules: tuple[str, ...] | str | None = None
    init: bool | str = True

    @classmethod
    def from_dict(cls, data: dict | None, where: str = "lora") -> LoraSettings:
        data = dict(data or {})
        _reject_unknown(cls, data, where)
        if isinstance(data.get("target_modules"), list):
            data["target_modules"] = tuple(data["target_modules"])
        return cls(**data)


@dataclass(frozen=True)
class FinetuneRecipe:
    """A fine-tune's settings; the defaults live here and nowhere else."""

    method: str = "lora"  # lora | qlora | full
    epochs: int = 1
    batch_size: int = 8
    grad_accum: int = 1
    lr: float = 1e-4
    weight_decay: float = 0.0
    warmup_ratio: float = 0.0
    warmup_steps: int | None = None  # an absolute count wins over the ratio
    warmup_start: float = 0.0  # warm-up starts at this fraction of lr
    lr_floor: float = 0.0  # the schedule ends at this fraction of lr
    schedule: str = "cosine"
    optimizer: str = "adamw"
    betas: tuple[float, float] | None = None
    eps: float | None = None
    max_grad_norm: float | None = 1.0  # None: no clipping
    max_length: int = 2048
    gradient_checkpointing: bool = False
    autocast: bool = True  # on CUDA, LoRA/QLoRA forwards run under autocast in the compute dtype (train/recipe.py)
    max_steps: int | None = None
    limit: int | None = None  # train on the first N samples only
    save_every: int | None = None  # checkpoint every N optimizer steps (default: a quarter of the run)
    lora: LoraSettings = field(default_factory=LoraSettings)

    @classmethod
    def from_dict(cls, data: dict | None, where: str = "finetune") -> FinetuneRecipe:
        data = dict(data or {})
        _reject_unknown(cls, data, where)
        data["lora"] = LoraSettings.from_dict(data.get("lora"), f"{where}: lora")
        if data.get("betas") is not None:
            data["betas"] = tuple(float(b) for b in data["betas"])
        return cls(**data)

    def to_dict(self) -> dict:
        out = asdict(self)
        out["lora"]["target_modules"] = (list(self.lora.target_modules)
                                         if isinstance(self.lora.target_modules, tuple) else self.lora.target_modules)
        out["betas"] = list(self.betas) if self.betas is not None else None
        return out


@dataclass(frozen=True)
class ModelFacts:
    """What a worker needs to know about a model, resolved by the planner from the card (and its twin).

    The worker never reads models/*.yaml: it builds the adapter from these facts, and every one of them
    can change a number, so they are all in the spec's hash. Attribute names match ModelCard's, so
    code written against a card (the adapters, `harness doctor`) takes these unchanged.
    """

    name: str
    family: str
    adapter: str  # "module:Class" of the ModelAdapter
    trust_remote_code: bool
    processor: dict  # processor kwargs in effect (card, then twin, then overrides)
    attn_implementation: str | None
    environment: dict  # pins checked before loading: the real model's, or the versions a twin runs under
    environment_notes: dict
    image: str
    twin_builder: str | None = None  # "module:function" when the weights are an offline twin
    chat: dict = field(default_factory=dict)  # the card's `chat:` section (ChatAdapter)
    # What the generic twin builder reads (config, template, special tokens), resolved from the card's files.
    twin_inputs: dict = field(default_factory=dict)
    # Remote code at a tag or branch, run because the user passed --allow-unpinned-code. Recorded only
    # when true (see _HashedSpec._fields), so pinned specs keep their ids.
    unpinned_remote_code: bool = False

    @property
    def source_file(self) -> str:
        return f"models/{self.name}.yaml"

    @classmethod
    def from_dict(cls, data: dict, where: str = "model_facts") -> ModelFacts:
        _reject_unknown(cls, data, where)
        return cls(**data)


# Bookkeeping keys a stored spec record carries besides the spec's own fields.
RECORD_KEYS = ("kind", "config_hash", "run_id", "adapter_id")


class _HashedSpec:
    """Serialisation and the identity hash, shared by the specs that name their outputs.

    No file locations go into a spec: the same run in a container and on the host is the same run.
    """

    kind = ""

    def _fields(self) -> dict:
        data = asdict(self)
        facts = data.get("model_facts")
        if facts and not facts.get("unpinned_remote_code"):
            del facts["unpinned_remote_code"]
        if data.get("data_format", 0) is None:  # canonical data: recorded only when a card maps it
            del data["data_format"]
        return data

    def to_dict(self) -> dict:
        return self._fields()

    def record(self) -> dict:
        """What spec.json holds: the spec, its kind and its identity (checked when a worker reads it)."""
        return {**self.to_dict(), "kind": self.kind, "config_hash": self.config_hash}

    @classmethod
    def _fields_from(cls, data: dict, where: str) -> dict:
        data = {k: v for k, v in data.items() if k not in RECORD_KEYS or k in cls.__dataclass_fields__}
        _reject_unknown(cls, data, where)
        if isinstance(data.get("model_facts"), dict):
            data["model_facts"] = ModelFacts.from_dict(data["model_facts"], f"{where}: model_facts")
        return data

    @property
    def config_hash(self) -> str:
        """The identity: every field but the record layout version (a new layout is not a new run).

        A prompt's name is a label shown with the run; its text (`prompt_suffix`) is the identity.
        """
        identity = {k: v for k, v in self.to_dict().items() if k not in ("schema_version", "prompt_name")}
        return hashlib.sha256(canonical_json(identity).encode()).hexdigest()[:12]


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
    adapter_id: str | None  # fine-tune id (checkpoints/<id>/) or published hub id; None for the base variant
    adapter_revision: str | None = None
    adapter_kind: str | None = None  # "adapter" (PEFT on the base) or "full" (complete weights)
    merge_adapter: bool = False  # fold a PEFT adapter into the base weights before timing (faster decode)
    model_facts: ModelFacts | None = None
    metric_versions: dict = field(default_factory=dict)  # name -> version of its definition
    synthetic: dict | None = None  # the generator recipe when `dataset` is synthetic:<key>
    prompt_name: str | None = None  # the benchmark's name for `prompt_suffix` (--prompt)
    data_format: dict | None = None  # the benchmark card's columns / label shape / subsets (data/cards.py)
    # Inference backend (transformers | vllm) and, for vllm, its engine settings. Recorded only when not
    # transformers (see to_dict), so the runs planned before backends existed keep their ids.
    backend: str = "transformers"
    engine: dict | None = None
    schema_version: int = SCHEMA_VERSION

    kind = "run"

    def to_dict(self) -> dict:
        data = self._fields()
        data["metrics"] = list(self.metrics)
        if data.get("backend") == "transformers" and not data.get("engine"):
            del data["backend"], data["engine"]
        return data

    @classmethod
    def from_dict(cls, data: dict, where: str = "run spec") -> RunSpec:
        data = cls._fields_from(data, where)
        return cls(**{**data, "metrics": tuple(data.get("metrics", ()))})

    @property
    def run_id(self) -> str:
        backend = "" if self.backend == "transformers" else f"-{self.backend}"  # ids of default runs unchanged
        return f"{self.model}-{self.variant}{backend}-bs{self.batch_size}-{self.config_hash}"

    @property
    def needs(self) -> str | None:
        """The fine-tune id this run reads its weights from, if any (the plan's graph edge)."""
        return self.adapter_id if self.variant == "finetuned" else None

    def record(self) -> dict:
        return {**super().record(), "run_id": self.run_id}


@dataclass(frozen=True)
class FinetuneSpec(_HashedSpec):
    """One fine-tune: a model, its training data and the fully merged, typed recipe."""

    model: str
    model_id: str
    model_revision: str | None
    dataset: str
    dataset_revision: str | None
    split: str
    prompt_suffix: str
    recipe: FinetuneRecipe
    dtype: str
    device: str
    seed: int
    preset: str | None
    recipe_name: str = DEFAULT_RECIPE  # the card's named recipe the `recipe` starts from
    model_facts: ModelFacts | None = None
    synthetic: dict | None = None
    prompt_name: str | None = None
    data_format: dict | None = None
    schema_version: int = SCHEMA_VERSION

    kind = "finetune"

    def to_dict(self) -> dict:
        data = self._fields()
        data["recipe"] = self.recipe.to_dict()
        return data

    @classmethod
    def from_dict(cls, data: dict, where: str = "fine-tune spec") -> FinetuneSpec:
        data = cls._fields_from(data, where)
        return cls(**{**data, "recipe": FinetuneRecipe.from_dict(data.get("recipe"), f"{where}: recipe")})

    @property
    def adapter_id(self) -> str:
        return f"{self.model}-ft-{self.config_hash}"

    def record(self) -> dict:
        return {**super().record(), "adapter_id": self.adapter_id}


def spec_from_record(record: dict, where: str = "spec.json") -> RunSpec | FinetuneSpec:
    """A spec from its stored record; the stored hash must be the one the spec computes."""
    from harness.errors import HarnessError

    kinds = {"run": RunSpec, "finetune": FinetuneSpec}
    kind = record.get("kind")
    if kind not in kinds:
        raise HarnessError(f"{where}: 'kind' must be run or finetune, got {kind!r}")
    try:
        spec = kinds[kind].from_dict(record, where)
    except (TypeError, ValueError) as exc:  # fields missing or of the wrong shape: a damaged or foreign file
        raise HarnessError(f"{where}: not a {kind} spec this harness can read ({exc})") from None
    if record.get("config_hash") not in (None, spec.config_hash):
        raise HarnessError(f"{where}: stored config_hash {record['config_hash']} is not this spec's "
                           f"{spec.config_hash}: edited by hand, or planned by another harness version "
                           "(with --runner docker: rebuild the images, so that host and image run the same harness)")
    return spec
