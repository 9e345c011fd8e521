"""Reads the declarative files: models/*.yaml, benchmarks/*.yaml, presets/*.yaml.

Also resolves lazy "module:attr" names, so adapters and twin builders import only when used.
"""

from __future__ import annotations

import os
from dataclasses import fields
from functools import cache
from pathlib import Path

import yaml

from harness.errors import HarnessError
from harness.plugins import resolve_object
from harness.specs import DEFAULT_RECIPE, BenchSpec, Decoding, FinetuneRecipe, ModelCard, Preset

__all__ = [
    "config_root",
    "list_models",
    "list_presets",
    "load_benchmark",
    "load_model",
    "load_preset",
    "recipe_overrides",
    "resolve_object",
]

TWIN_KEYS = ("builder", "environment", "finetune", "processor")


def config_root() -> Path:
    """The folder holding models/, benchmarks/ and presets/ (HARNESS_CONFIG_DIR overrides)."""
    env = os.environ.get("HARNESS_CONFIG_DIR")
    candidates = [Path(env)] if env else []
    candidates += [Path(__file__).resolve().parents[1], Path.cwd()]
    for root in candidates:
        if (root / "models").is_dir():
            return root
    raise HarnessError(
        "cannot find the models/ folder: run from the repository root or set HARNESS_CONFIG_DIR"
    )


def _read_yaml(path: Path) -> dict:
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}" if mark else ""
        raise HarnessError(f"{path}{where}: invalid YAML ({getattr(exc, 'problem', exc)})") from None
    if not isinstance(data, dict):
        raise HarnessError(f"{path}: expected a mapping at the top level")
    return data


def _build(cls, data: dict, path: Path, required: tuple[str, ...]):
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise HarnessError(f"{path}: unknown field(s) {unknown}")
    missing = [k for k in required if data.get(k) in (None, "")]
    if missing:
        raise HarnessError(f"{path}: missing field '{missing[0]}'")
    return cls(**data, source_file=str(path))


def _names(kind: str) -> list[str]:
    return sorted(p.stem for p in (config_root() / kind).glob("*.yaml"))


def _path(kind: str, name: str) -> Path:
    path = config_root() / kind / f"{name}.yaml"
    if not path.is_file():
        known = ", ".join(_names(kind)) or "none"
        raise HarnessError(f"unknown {kind[:-1]} '{name}' (known: {known})")
    return path


def list_models() -> list[ModelCard]:
    return [load_model(name) for name in _names("models")]


def list_presets() -> list[str]:
    return _names("presets")


def check_recipe(layer: dict | None, where: str) -> None:
    """A partial recipe (a card's, a preset's, a twin's, an override) must use FinetuneRecipe's keys."""
    if layer is not None and not isinstance(layer, dict):
        raise HarnessError(f"{where}: expected a mapping of fine-tune settings")
    try:
        FinetuneRecipe.from_dict(layer, where)
    except TypeError as exc:  # a value of the wrong shape, e.g. lora: 8
        raise HarnessError(f"{where}: {exc}") from None


def _version(kind: str, name: str) -> tuple[str, tuple[int, int]]:
    """The cache key of a config file: where it is and when and how it last changed (an edit is seen at once)."""
    path = _path(kind, name)
    stat = path.stat()
    return str(path), (stat.st_mtime_ns, stat.st_size)


def load_model(name: str) -> ModelCard:
    return _load_model(name, *_version("models", name))


def load_benchmark(name: str) -> BenchSpec:
    return _load_benchmark(name, *_version("benchmarks", name))


def load_preset(name: str) -> Preset:
    return _load_preset(name, *_version("presets", name))


@cache
def _load_model(name: str, path: str, changed: tuple[int, int]) -> ModelCard:
    path = Path(path)
    data = _read_yaml(path)
    card = _build(ModelCard, data, path, ("name", "family", "adapter", "hub_id", "revision"))
    if card.name != name:
        raise HarnessError(f"{path}: field 'name' is '{card.name}', expected '{name}' (the file name)")
    _check_recipes(card.recipes, path)
    check_recipe(card.finetune, f"{path}: finetune")
    unknown = sorted(set(card.twin) - set(TWIN_KEYS))
    if unknown:
        raise HarnessError(f"{path}: twin: unknown key '{unknown[0]}' (known: {', '.join(TWIN_KEYS)})")
    check_recipe(card.twin.get("finetune"), f"{path}: twin.finetune")
    return card


def _check_recipes(recipes, path: Path) -> None:
    """`recipes:` maps names to {source, overrides of finetune:}; `official` only cites finetune:'s source."""
    if not recipes:
        return
    if not isinstance(recipes, dict):
        raise HarnessError(f"{path}: 'recipes' must map recipe names to their source and overrides")
    for name, entry in recipes.items():
        if not isinstance(entry, dict) or not str(entry.get("source") or "").strip():
            raise HarnessError(f"{path}: recipes.{name} needs a 'source' saying where its values come from")
        check_recipe({k: v for k, v in entry.items() if k != "source"}, f"{path}: recipes.{name}")
    official = recipes.get(DEFAULT_RECIPE)
    if official is None:
        raise HarnessError(f"{path}: recipes needs an '{DEFAULT_RECIPE}' entry citing the source of 'finetune:'")
    if set(official) != {"source"}:
        raise HarnessError(f"{path}: recipes.{DEFAULT_RECIPE} only cites its source; its values belong in "
                           f"'finetune:' (move {sorted(set(official) - {'source'})} there)")


def recipe_overrides(card: ModelCard, name: str) -> dict:
    """What the named recipe changes in `card.finetune` ({} for the official recipe)."""
    known = sorted(set(card.recipes) | {DEFAULT_RECIPE})
    if name not in known:
        raise HarnessError(f"{card.source_file}: no recipe '{name}' for {card.name} (known: {', '.join(known)})")
    return {k: v for k, v in (card.recipes.get(name) or {}).items() if k != "source"}


@cache
def _load_benchmark(name: str, path: str, changed: tuple[int, int]) -> BenchSpec:
    path = Path(path)
    data = _read_yaml(path)
    data["metrics"] = tuple(data.get("metrics") or ())
    data["version"] = str(data.get("version", ""))
    data.setdefault("dataset_revision", None)
    data.setdefault("prompt_suffix", "")
    try:
        data["decoding"] = Decoding.from_dict(data.get("decoding"))
    except HarnessError as exc:
        raise HarnessError(f"{path}: {exc}") from None
    return _build(BenchSpec, data, path, ("name", "version", "dataset", "split", "metrics"))


@cache
def _load_preset(name: str, path: str, changed: tuple[int, int]) -> Preset:
    path = Path(path)
    data = _read_yaml(path)
    for key, default in (("synthetic", {}), ("bench", {}), ("finetune", {}), ("paths", {})):
        data[key] = data.get(key) or default
    data.setdefault("device", None)
    data.setdefault("dtype", None)
    data.setdefault("banner", "")
    data.setdefault("description", "")
    data.setdefault("use_twins", False)
    preset = _build(Preset, data, path, ("name",))
    check_recipe(preset.finetune, f"{path}: finetune")
    return preset
