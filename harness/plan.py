"""Planning: one typed request -> a Plan of FinetuneSpecs and RunSpecs, every input resolved into the specs.

The planner is the only code that reads models/, benchmarks/ and presets/. Whatever can change a number
(model facts, processor kwargs, data source and revision, the synthetic recipe, prompt, decoding, metric
versions, the typed recipe) goes into a spec and so into its hash; workers read specs, never YAML.
Pure: imports no torch, builds nothing, runs nothing.
"""

from __future__ import annotations

import copy
import hashlib
import os
import re
from dataclasses import dataclass, field, replace
from pathlib import Path

from harness.backends import BACKENDS, DEFAULT_BACKEND, resolve_backend
from harness.data.cards import data_format
from harness.data.layout import local_splits
from harness.data.local import local_layout
from harness.errors import HarnessError
from harness.overrides import CARD_OVERRIDABLE, nest
from harness.registry import (
    check_recipe,
    list_models,
    load_benchmark,
    load_model,
    load_preset,
    prompt_variant,
    recipe_overrides,
)
from harness.specs import (
    DEFAULT_RECIPE,
    VARIANTS,
    BenchSpec,
    Decoding,
    FinetuneRecipe,
    FinetuneSpec,
    ModelCard,
    ModelFacts,
    Preset,
    RunSpec,
    canonical_json,
)

__all__ = [
    "SYNTHETIC_PREFIX",
    "BenchRequest",
    "Paths",
    "Plan",
    "check_devices",
    "deep_merge",
    "facts_for",
    "plan",
    "plan_finetune",
    "resolve_paths",
]

DEFAULT_PATHS = {"results": "results", "checkpoints": "checkpoints", "leaderboard": "leaderboard/LEADERBOARD.md"}
SYNTHETIC_PREFIX = "synthetic:"
ENV_PATHS = {"results": "HARNESS_RESULTS_DIR", "checkpoints": "HARNESS_CHECKPOINTS_DIR"}


@dataclass(frozen=True)
class Paths:
    results: Path
    checkpoints: Path
    leaderboard: Path
    cache: Path

    def finetune_dir(self, adapter_id: str) -> Path:
        """Fine-tunes are keyed by their id, like runs: two recipes never overwrite each other."""
        return self.checkpoints / adapter_id

    def run_dir(self, run_id: str) -> Path:
        return self.results / run_id


def resolve_paths(preset: Preset | None, results=None, checkpoints=None, leaderboard=None) -> Paths:
    """Flag, then environment, then preset default, then the real-run default."""
    base = {**DEFAULT_PATHS, **(preset.paths if preset else {})}

    def pick(key, flag):
        return Path(flag or os.environ.get(ENV_PATHS.get(key, ""), "") or base[key])

    cache = Path(os.environ.get("HARNESS_CACHE_DIR", ".harness")).expanduser()
    return Paths(pick("results", results), pick("checkpoints", checkpoints), pick("leaderboard", leaderboard), cache)


def deep_merge(base: dict, override: dict) -> dict:
    out = copy.deepcopy(base)
    for key, value in (override or {}).items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


@dataclass(frozen=True)
class BenchRequest:
    """What the user asked for; the CLI fills it, nothing else reads argparse."""

    models: tuple[str, ...] = ()  # empty: every registered model (--all)
    variants: tuple[str, ...] = ("base", "finetuned")
    preset: str | None = None
    benchmark: str = "chartqa"
    dataset: str | None = None
    dataset_revision: str | None = None
    split: str | None = None
    limit: int | None = None  # the bench only; fine-tunes always use the whole train split
    batch_sizes: tuple[int, ...] = (8,)
    seed: int = 0
    device: str | None = None
    dtype: str | None = None
    recipe: str = DEFAULT_RECIPE
    prompt: str | None = None  # --prompt: one of the benchmark's named prompt variants (None: its default)
    # Card edits from `--set KEY=VALUE` and decoding from `--decoding KEY=VALUE`: (path, value) pairs.
    sets: tuple[tuple[tuple[str, ...], object], ...] = ()
    decoding: tuple[tuple[tuple[str, ...], object], ...] = ()
    merge_adapter: bool = False
    allow_unpinned_code: bool = False  # --allow-unpinned-code: run remote code at a tag or branch anyway
    backend: str = DEFAULT_BACKEND  # --backend: transformers | vllm (harness/backends/)

    @property
    def all_models(self) -> bool:
        return not self.models


@dataclass(frozen=True)
class Plan:
    """The specs to run, as a small graph: a fine-tuned RunSpec `needs` the FinetuneSpec with that id."""

    finetunes: tuple[FinetuneSpec, ...] = ()
    runs: tuple[RunSpec, ...] = ()
    skipped: tuple[str, ...] = field(default_factory=tuple)  # one line each: what was left out and why

    def finetune(self, adapter_id: str) -> FinetuneSpec | None:
        return next((f for f in self.finetunes if f.adapter_id == adapter_id), None)


# ------------------------------------------------------------------------------------------ resolution

def _check_sets(sets: dict) -> None:
    unknown = sorted(set(sets) - set(CARD_OVERRIDABLE))
    if unknown:
        raise HarnessError(f"--set {unknown[0]}: not a card setting that can be overridden "
                           f"(use one of {', '.join(CARD_OVERRIDABLE)}; decoding goes in --decoding)")
    check_recipe(sets.get("finetune"), "--set finetune")


def _apply_sets(card: ModelCard, sets: dict) -> ModelCard:
    """The card with `--set` edits applied, as if the YAML file said so.

    processor and finetune edits are applied last by `model_facts` and `_recipe` instead, so that they
    win over a twin's or a preset's values too.
    """
    changes = {}
    for key, value in sets.items():
        if key in ("processor", "finetune"):
            continue
        current = getattr(card, key)
        if isinstance(current, dict):
            if not isinstance(value, dict):
                raise HarnessError(f"--set {key}={value!r}: {key} is a mapping; set one of its keys ({key}.KEY=...)")
            value = deep_merge(current, value)
        changes[key] = value
    if "generation" in changes:
        Decoding.from_dict({**Decoding().to_dict(), **changes["generation"]})
    return replace(card, **changes)


def _twin_version() -> str:
    from harness.adapters.twins.cache import TWIN_VERSION

    return TWIN_VERSION


def model_identity(card: ModelCard, preset: Preset | None) -> tuple[str, str | None]:
    if preset and preset.use_twins:
        return f"twin:{card.name}@v{_twin_version()}", None
    return card.hub_id, card.revision


def model_facts(card: ModelCard, preset: Preset | None, sets: dict) -> ModelFacts:
    twin = bool(preset and preset.use_twins)
    processor = dict(card.processor)
    if twin:
        processor = {**processor, **card.twin.get("processor", {})}
    processor = deep_merge(processor, sets.get("processor", {}))  # --set wins over the twin's bounds too
    return ModelFacts(
        name=card.name,
        family=card.family,
        adapter=card.adapter,
        trust_remote_code=card.trust_remote_code,
        processor=processor,
        attn_implementation=card.attn_implementation,
        # A twin is built by this harness with the installed library: its own pins, not the real model's.
        environment=dict(card.twin.get("environment", {})) if twin else dict(card.environment),
        environment_notes={} if twin else dict(card.environment_notes),
        image=card.image,
        twin_builder=card.twin.get("builder") if twin else None,
        chat=dict(card.chat),
        twin_inputs=_twin_inputs(card) if twin else {},
    )


def _twin_inputs(card: ModelCard) -> dict:
    """The generic twin's files, read here so the spec (and the twin's cache key) holds their content."""
    from harness.adapters.twins.generic import card_twin_inputs

    return card_twin_inputs(card)


_COMMIT = re.compile(r"[0-9a-f]{40}")


def _check_remote_code(card: ModelCard, preset: Preset | None, request: BenchRequest,
                       study: bool = False) -> bool:
    """Whether `card` (or its full study checkpoint) runs remote code at a revision that is not a commit.

    A tag or branch can be moved to other code after the card was reviewed, and that code runs with the
    user's privileges: refused in one line unless the request allows it (then the spec records it).
    Twins are local folders built by the harness: nothing remote runs.
    """
    if not card.trust_remote_code or (preset and preset.use_twins):
        return False
    revisions = [("revision", card.revision)]  # every checkpoint runs the base revision's code
    if study and card.study.get("kind") == "full":  # complete remote-code weights at their own revision
        revisions.append(("study.revision", card.study.get("revision")))
    unpinned = [(key, rev) for key, rev in revisions if not (rev and _COMMIT.fullmatch(str(rev)))]
    if unpinned and not request.allow_unpinned_code:
        key, rev = unpinned[0]
        raise HarnessError(f"{card.source_file}: {key} {rev!r} is not a commit hash and the model runs "
                           f"remote code (trust_remote_code); pin it with `harness pin {card.name} --write`, "
                           "or pass --allow-unpinned-code to run it anyway")
    return bool(unpinned)


def check_gated(card: ModelCard, preset: Preset | None) -> None:
    """A gated hub repo (`gated: true`) needs HF_TOKEN: one line before any download. Twins need none."""
    if card.gated and not (preset and preset.use_twins) and not os.environ.get("HF_TOKEN"):
        raise HarnessError(f"{card.hub_id} is gated: set HF_TOKEN (accept the licence at "
                           f"https://huggingface.co/{card.hub_id})")


def facts_for(model: str, preset: str | None = None) -> ModelFacts:
    """The model facts a spec for `model` carries (under `preset`): for tools and tests that load one model."""
    card = load_model(model)
    return model_facts(card, load_preset(preset) if preset else None, {})


def _dataset(bench: BenchSpec, preset: Preset | None, request: BenchRequest) -> tuple[str, str | None, dict | None]:
    """(source, revision, synthetic recipe): --dataset wins; a synthetic preset generates; else the benchmark's."""
    if request.dataset:
        return request.dataset, request.dataset_revision, None
    if preset and preset.synthetic:
        # Symbolic, not a path: the worker materialises it in its own cache (host or container). A card
        # with its own data format gets a stand-in in that format (its columns, label shape, subsets).
        recipe = dict(preset.synthetic)
        if data_format(bench):
            recipe["format"] = data_format(bench)
        key = hashlib.sha256(canonical_json(recipe).encode()).hexdigest()[:8]
        return f"{SYNTHETIC_PREFIX}{key}", None, recipe
    return bench.dataset, request.dataset_revision or bench.dataset_revision, None


def _device(preset: Preset | None, override: str | None) -> str:
    """The device a spec runs on, resolved here ('auto' is never recorded): cuda when this host has a GPU."""
    device = override or (preset.device if preset and preset.device else None) or "auto"
    if device != "auto":
        return device
    from harness.runners.docker import host_has_nvidia_gpu

    return "cuda" if host_has_nvidia_gpu() else "cpu"


def _dtype(card: ModelCard, preset: Preset | None, override: str | None) -> str:
    return override or (preset.dtype if preset and preset.dtype else None) or card.dtype


def _recipe(card: ModelCard, preset: Preset | None, recipe_name: str, sets: dict) -> FinetuneRecipe:
    """Card (official), the named recipe, the preset, the twin (twin presets only), then --set finetune.*."""
    layers = [card.finetune, recipe_overrides(card, recipe_name), preset.finetune if preset else {}]
    if preset and preset.use_twins:
        layers.append(card.twin.get("finetune", {}))
    layers.append(sets.get("finetune", {}))
    merged: dict = {}
    for layer in layers:
        merged = deep_merge(merged, layer)
    return FinetuneRecipe.from_dict(merged, f"{card.source_file}: finetune (merged)")


# ------------------------------------------------------------------------------------------ validation
# Cheap checks (a few stat calls, one small JSON) so a bad argument is one line before any folder is
# written or model loaded, instead of one failure per job after minutes of work.

_LOCAL_PREFIXES = ("/", "./", "../", "~")


def _validate_data(source: str, revision: str | None, synthetic: dict | None, split: str, what: str,
                   flagged: bool, limit: int | None = None, fmt: dict | None = None) -> None:
    """Refuse a dataset path that is not there, or a split the data set does not have, in one line.

    `what` names where the split came from (e.g. "--split foo"); `flagged`: the source is --dataset.
    A hub id cannot be checked offline: the worker loads it and reports. A local data set's rows are
    then read as the worker will read them (`limit` first rows; `fmt`: the card's column mapping):
    schema, empty split and too many bad rows are one line here, not after a fine-tune (data/schema.py).
    """
    name = f"--dataset {source}" if flagged else f"dataset {source}"
    if synthetic is not None:
        sizes = dict(synthetic.get("sizes") or {})  # exactly the splits the worker generates
        where = "the preset's synthetic data set"
        if split not in sizes:
            raise HarnessError(f"{what}: {where} has no split '{split}' (known: {', '.join(sizes) or 'none'})")
        if not sizes[split]:
            raise HarnessError(f"{what}: split '{split}' of {where} is empty (size 0)")
        return
    path = Path(os.path.expanduser(source))
    if not path.exists():
        if source.startswith(_LOCAL_PREFIXES):
            raise HarnessError(f"{name}: no such directory")
        return  # a hub id
    layout = local_layout(path)
    if layout is not None:  # an image folder with metadata, or a JSONL/CSV file of rows (data/local.py)
        if revision is not None:
            raise HarnessError(f"{name}: a revision ({revision!r}) only applies to hub ids, not local data")
        if layout.splits is not None and split not in layout.splits:
            raise HarnessError(f"{what}: {source} has no split '{split}' (known: {', '.join(layout.splits)})")
        return _check_rows(source, split, limit, fmt)
    if not path.is_dir():
        raise HarnessError(f"{name}: is a file; give the directory that holds the data set")
    if revision is not None:
        raise HarnessError(f"{name}: a revision ({revision!r}) only applies to hub ids, not local directories")
    splits = local_splits(path)
    if splits is None:
        if not ((path / "state.json").is_file() and (path / "dataset_info.json").is_file()
                or (path / "dataset_dict.json").is_file()):  # an unreadable listing: the loader says why
            raise HarnessError(f"{name}: not a data set directory (expected dataset_dict.json from save_to_disk, "
                               "parquet files data/<split>-*.parquet, "
                               "or an image folder with metadata.jsonl / metadata.csv)")
        return _check_rows(source, split, limit, fmt)  # a single saved Dataset: which split is the loader's rule
    if split not in splits:
        raise HarnessError(f"{what}: {source} has no split '{split}' (known: {', '.join(splits) or 'none'})")
    _check_rows(source, split, limit, fmt)


def _check_rows(source: str, split: str, limit: int | None, fmt: dict | None) -> None:
    """Load the local split as the worker will (headers only, no pixels decoded): its one-line errors."""
    from harness.data.load import load_split

    load_split(source, split, limit=limit, data_format=fmt)


def check_devices(p: Plan, runner: str) -> None:
    """A CUDA device this host cannot provide is one line before any job folder is written or model loaded.

    Only for runners that run on this host (local; docker on the local engine): no torch here, the
    driver's files say whether there is an NVIDIA GPU. A plan may still name CUDA (--dry-run --json
    for another machine); executing it here is what is refused.
    """
    if runner not in ("local", "docker") or (runner == "docker" and os.environ.get("DOCKER_HOST")):
        return
    devices = sorted({s.device for s in (*p.finetunes, *p.runs) if str(s.device).startswith("cuda")})
    if not devices:
        return
    from harness.runners.docker import host_gpu_ids, host_has_nvidia_gpu

    if not host_has_nvidia_gpu():
        raise HarnessError(f"--device {devices[0]}: this machine has no NVIDIA GPU (no driver found); "
                           "use --device cpu")
    count = len(host_gpu_ids())
    for device in devices:
        index = device.partition(":")[2]
        if index and (not index.isdigit() or (count and int(index) >= count)):
            raise HarnessError(f"--device {device}: this machine has {count} NVIDIA GPU(s) (cuda:0..cuda:{count - 1})")


def plan_finetune(card: ModelCard, request: BenchRequest, preset: Preset | None = None,
                  bench: BenchSpec | None = None) -> FinetuneSpec:
    preset = preset if preset is not None else (load_preset(request.preset) if request.preset else None)
    bench = bench or load_benchmark(request.benchmark)
    sets = nest(list(request.sets))
    _check_sets(sets)
    card = _apply_sets(card, sets)
    source, revision, synthetic = _dataset(bench, preset, request)
    _validate_data(source, revision, synthetic, "train", "fine-tune split 'train'", bool(request.dataset),
                   fmt=data_format(bench))
    model_id, model_revision = model_identity(card, preset)
    check_gated(card, preset)
    unpinned = _check_remote_code(card, preset, request)
    return FinetuneSpec(
        model=card.name,
        model_id=model_id,
        model_revision=model_revision,
        dataset=source,
        dataset_revision=revision,
        split="train",
        prompt_suffix=prompt_variant(bench, request.prompt)[1],
        prompt_name=prompt_variant(bench, request.prompt)[0],
        data_format=data_format(bench),
        recipe=_recipe(card, preset, request.recipe, sets),
        dtype=_dtype(card, preset, request.dtype),
        device=_device(preset, request.device),
        seed=request.seed,
        preset=preset.name if preset else None,
        recipe_name=request.recipe,
        model_facts=replace(model_facts(card, preset, sets), unpinned_remote_code=unpinned),
        synthetic=synthetic,
    )


def _metric_versions(names: tuple[str, ...]) -> dict:
    from harness.metrics import get_metric

    return {name: get_metric(name).version for name in names}


def _study_skip(card: ModelCard, preset: Preset | None, request: BenchRequest) -> str | None:
    """Why the study variant of `card` cannot run, or None. Naming such a model is an error."""
    if not card.study:
        reason = "the original study published no fine-tune for this model"
        if not request.all_models:
            raise HarnessError(f"{card.name}: {reason}")
        return reason
    if preset and preset.use_twins:
        return (f"preset {preset.name} runs offline twins, and the study's published weights "
                f"({card.study['hub_id']}) cannot be twinned")
    return None


def plan(request: BenchRequest) -> Plan:
    """Every fine-tune and run the request implies, fully resolved; raises on any invalid input."""
    preset = load_preset(request.preset) if request.preset else None
    bench = load_benchmark(request.benchmark)
    for variant in request.variants:
        if variant not in VARIANTS:
            raise HarnessError(f"unknown variant '{variant}' (use {', '.join(VARIANTS)})")
    if any(b < 1 for b in request.batch_sizes):
        raise HarnessError(f"--batch-size must be positive, got {list(request.batch_sizes)}")
    if request.limit is not None and request.limit < 1:
        raise HarnessError(f"--limit must be a positive number of samples, got {request.limit}")
    cards = list_models() if request.all_models else [load_model(name) for name in request.models]
    sets = nest(list(request.sets))
    _check_sets(sets)
    source, revision, synthetic = _dataset(bench, preset, request)
    split = request.split or bench.split
    prompt_name, prompt_suffix = prompt_variant(bench, request.prompt)
    _validate_data(source, revision, synthetic, split,
                   f"--split {split}" if request.split else f"split '{split}' ({bench.name} benchmark)",
                   bool(request.dataset), limit=request.limit, fmt=data_format(bench))
    decoding_base = deep_merge(bench.decoding.to_dict(), preset.bench.get("decoding", {}) if preset else {})
    finetunes: dict[str, FinetuneSpec] = {}
    runs, skipped = [], []
    for base_card in cards:
        card = _apply_sets(base_card, sets)
        try:  # a gated model without HF_TOKEN: one line (skipped under --all, which plans the rest)
            check_gated(card, preset)
        except HarnessError as exc:
            if not request.all_models:
                raise
            skipped.append(f"{card.name}: skipped: {exc}")
            continue
        model_id, model_revision = model_identity(card, preset)
        facts = model_facts(card, preset, sets)
        try:  # the backend's own pins and image; an unsupported backend is one line (skipped under --all)
            facts, engine = resolve_backend(card, facts, request.backend, bool(preset and preset.use_twins))
        except HarnessError as exc:
            if not request.all_models or request.backend not in BACKENDS:
                raise
            skipped.append(str(exc))
            continue
        # Card-level generation, then --decoding: the same for every variant, so comparisons are fair.
        decoding = deep_merge(deep_merge(decoding_base, card.generation), nest(list(request.decoding)))
        try:
            decoding = Decoding.from_dict(decoding).to_dict()
        except HarnessError as exc:
            raise HarnessError(f"{card.source_file}: {exc}") from None
        for variant in request.variants:
            adapter_id = adapter_revision = adapter_kind = None
            try:
                unpinned = _check_remote_code(card, preset, request, study=variant == "study")
            except HarnessError as exc:
                if not request.all_models:
                    raise
                skipped.append(f"{card.name}: {variant} variant skipped: {exc}")  # --all runs the pinned rest
                continue
            if variant == "finetuned":
                if card.supports.get("finetune") == []:
                    skipped.append(f"{card.name}: benchmark only (its card supports no fine-tune); "
                                   "no fine-tuned variant")
                    continue
                fspec = plan_finetune(base_card, request, preset, bench)
                finetunes.setdefault(fspec.adapter_id, fspec)
                adapter_id = fspec.adapter_id
                adapter_kind = "full" if fspec.recipe.method == "full" else "adapter"
            elif variant == "study":
                reason = _study_skip(card, preset, request)
                if reason:
                    skipped.append(f"{card.name}: study variant skipped: {reason}")
                    continue
                adapter_id, adapter_revision = card.study["hub_id"], card.study.get("revision")
                adapter_kind = card.study.get("kind", "adapter")
            for batch_size in request.batch_sizes:
                runs.append(RunSpec(
                    model=card.name,
                    variant=variant,
                    benchmark=bench.name,
                    benchmark_version=bench.version,
                    dataset=source,
                    dataset_revision=revision,
                    split=split,
                    limit=request.limit,
                    batch_size=batch_size,
                    preset=preset.name if preset else None,
                    decoding=decoding,
                    prompt_suffix=prompt_suffix,
                    prompt_name=prompt_name,
                    data_format=data_format(bench),
                    metrics=bench.metrics,
                    dtype=_dtype(card, preset, request.dtype),
                    device=_device(preset, request.device),
                    seed=request.seed,
                    model_id=model_id,
                    model_revision=model_revision,
                    adapter_id=adapter_id,
                    adapter_revision=adapter_revision,
                    adapter_kind=adapter_kind,
                    merge_adapter=request.merge_adapter and adapter_id is not None,
                    model_facts=replace(facts, unpinned_remote_code=unpinned),
                    metric_versions=_metric_versions(bench.metrics),
                    synthetic=synthetic,
                    backend=request.backend,
                    engine=engine,
                ))
    return Plan(finetunes=tuple(finetunes.values()), runs=tuple(runs), skipped=tuple(skipped))
