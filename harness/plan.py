"""Planning: expand models x variants x batch sizes into RunSpecs and FinetuneSpecs.

Pure: reads YAML and result/checkpoint markers, imports no torch, builds nothing.
"""

from __future__ import annotations

import copy
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from harness.errors import HarnessError
from harness.registry import load_benchmark, load_model, load_preset, recipe_overrides
from harness.specs import (
    DEFAULT_RECIPE,
    VARIANTS,
    BenchSpec,
    Decoding,
    FinetuneSpec,
    ModelCard,
    Preset,
    RunSpec,
    canonical_json,
)

__all__ = [
    "SYNTHETIC_PREFIX",
    "Paths",
    "bench_specs",
    "deep_merge",
    "finetune_spec",
    "resolve_dataset",
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

    def finetune_dir(self, model: str) -> Path:
        return self.checkpoints / model


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


def resolve_dataset(bench: BenchSpec, preset: Preset | None, override: str | None) -> tuple[str, str | None]:
    """(source, revision): --dataset wins; a synthetic preset uses its generated set; else the benchmark's."""
    if override:
        return override, None
    if preset and preset.synthetic:
        # Symbolic, not a path: the runner materialises it in its own cache (host or container).
        key = hashlib.sha256(canonical_json(preset.synthetic).encode()).hexdigest()[:8]
        return f"{SYNTHETIC_PREFIX}{key}", None
    return bench.dataset, bench.dataset_revision


def _model_identity(card: ModelCard, preset: Preset | None) -> tuple[str, str | None]:
    if preset and preset.use_twins:
        from harness.adapters.twins.cache import TWIN_VERSION

        return f"twin:{card.name}@v{TWIN_VERSION}", None
    return card.hub_id, card.revision


def _dtype(card: ModelCard, preset: Preset | None, override: str | None) -> str:
    return override or (preset.dtype if preset and preset.dtype else None) or card.dtype


def _device(preset: Preset | None, override: str | None) -> str:
    return override or (preset.device if preset and preset.device else None) or "auto"


def finetune_spec(model: str, *, preset_name: str | None = None, dataset: str | None = None,
                  overrides: dict | None = None, seed: int = 0, device: str | None = None,
                  dtype: str | None = None, benchmark: str = "chartqa",
                  recipe: str = DEFAULT_RECIPE) -> FinetuneSpec:
    """Merge order: the card's official recipe, the named `recipe`'s overrides, the preset, the twin's
    overrides (twin presets only), then command-line `overrides`."""
    card = load_model(model)
    preset = load_preset(preset_name) if preset_name else None
    bench = load_benchmark(benchmark)
    source, revision = resolve_dataset(bench, preset, dataset)
    recipe_name = recipe
    recipe = deep_merge(card.finetune, recipe_overrides(card, recipe_name))
    recipe = deep_merge(recipe, preset.finetune if preset else {})
    if preset and preset.use_twins:
        recipe = deep_merge(recipe, card.twin.get("finetune", {}))
    recipe = deep_merge(recipe, overrides or {})
    model_id, model_revision = _model_identity(card, preset)
    return FinetuneSpec(
        model=card.name,
        model_id=model_id,
        model_revision=model_revision,
        dataset=source,
        dataset_revision=revision,
        split="train",
        prompt_suffix=bench.prompt_suffix,
        recipe=recipe,
        dtype=_dtype(card, preset, dtype),
        device=_device(preset, device),
        seed=seed,
        preset=preset.name if preset else None,
        recipe_name=recipe_name,
    )


def bench_specs(models: list[str], variants: list[str], *, preset_name: str | None = None,
                benchmark: str = "chartqa", dataset: str | None = None, split: str | None = None,
                limit: int | None = None, batch_sizes: list[int] | None = None, seed: int = 0,
                device: str | None = None, dtype: str | None = None,
                adapter_ids: dict[str, str] | None = None, skip_missing_adapters: bool = False,
                skip_missing_studies: bool = False, skipped: list[str] | None = None) -> list[RunSpec]:
    """RunSpecs for every model x variant x batch size. `adapter_ids` maps model -> fine-tune id.

    A study variant that cannot run is left out, with the reason appended to `skipped`: under twins
    (always), or for a model whose card has no study checkpoint when `skip_missing_studies` (`--all`);
    otherwise the latter is an error.
    """
    preset = load_preset(preset_name) if preset_name else None
    bench = load_benchmark(benchmark)
    source, revision = resolve_dataset(bench, preset, dataset)
    decoding_base = deep_merge(bench.decoding.to_dict(), preset.bench.get("decoding", {}) if preset else {})
    specs = []
    for name in models:
        card = load_model(name)
        model_id, model_revision = _model_identity(card, preset)
        # Card-level generation settings apply to every variant alike: same decoding for base and fine-tune.
        decoding = Decoding.from_dict(deep_merge(decoding_base, card.generation)).to_dict()
        for variant in variants:
            if variant not in VARIANTS:
                raise HarnessError(f"unknown variant '{variant}' (use {', '.join(VARIANTS)})")
            adapter_id, adapter_revision = None, None
            if variant == "finetuned":
                adapter_id = (adapter_ids or {}).get(name)
                if adapter_id is None and skip_missing_adapters:
                    continue  # its fine-tune failed and was reported; bench the rest
                if adapter_id is None:
                    raise HarnessError(f"{name}: no fine-tuned adapter; run `harness finetune {name}` first")
            elif variant == "study":
                reason = None
                if not card.study:
                    reason = "the original study published no fine-tune for this model"
                    if not skip_missing_studies:
                        raise HarnessError(f"{name}: {reason}")
                elif preset and preset.use_twins:
                    reason = (f"preset {preset.name} runs offline twins, and the study's published weights "
                              f"({card.study['hub_id']}) cannot be twinned")
                if reason:
                    if skipped is not None:
                        skipped.append(f"{name}: study variant skipped: {reason}")
                    continue
                adapter_id, adapter_revision = card.study["hub_id"], card.study.get("revision")
            for batch_size in batch_sizes or [8]:
                if batch_size < 1:
                    raise HarnessError(f"--batch-size must be positive, got {batch_size}")
                specs.append(RunSpec(
                    model=card.name,
                    variant=variant,
                    benchmark=bench.name,
                    benchmark_version=bench.version,
                    dataset=source,
                    dataset_revision=revision,
                    split=split or bench.split,
                    limit=limit,
                    batch_size=batch_size,
                    preset=preset.name if preset else None,
                    decoding=decoding,
                    prompt_suffix=bench.prompt_suffix,
                    metrics=bench.metrics,
                    dtype=_dtype(card, preset, dtype),
                    device=_device(preset, device),
                    seed=seed,
                    model_id=model_id,
                    model_revision=model_revision,
                    adapter_id=adapter_id,
                    adapter_revision=adapter_revision,
                ))
    return specs
