"""Reads the declarative files: models/*.yaml, benchmarks/*.yaml, presets/*.yaml.

Also resolves lazy "module:attr" names, so adapters and twin builders import only when used.
"""

from __future__ import annotations

import difflib
import os
import typing
from dataclasses import MISSING, fields
from functools import cache
from pathlib import Path

import yaml

from harness.data.cards import check_card_format
from harness.errors import HarnessError
from harness.plugins import resolve_object
from harness.records.base import accepts, type_name
from harness.specs import DEFAULT_RECIPE, BenchSpec, Decoding, FinetuneRecipe, ModelCard, Preset

__all__ = [
    "config_root",
    "list_models",
    "list_presets",
    "load_benchmark",
    "load_model",
    "load_preset",
    "prompt_variant",
    "recipe_overrides",
    "resolve_object",
]

# builder/environment/finetune/processor: every twin; the rest: the generic builder (twins/generic.py).
TWIN_KEYS = ("builder", "environment", "finetune", "processor", "config", "model_type", "chat_template",
             "special_tokens", "tokenizer", "token_ids", "image_processor", "processor_init", "generation")
# The `chat:` section read by harness/adapters/chat.py.
CHAT_KEYS = ("system_prompt", "lora_targets", "strip_trailing_period", "image_tokens", "prefix_lm")


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
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise HarnessError(f"{path}: not UTF-8 text (byte {exc.object[exc.start]:#04x} at offset {exc.start}); "
                           "save it as UTF-8") from None
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
        close = difflib.get_close_matches(unknown[0], sorted(known), n=1)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        raise HarnessError(f"{path}: unknown field(s) {unknown}{hint}")
    missing = [k for k in required if data.get(k) in (None, "")]
    missing += [f.name for f in fields(cls) if f.default is MISSING and f.default_factory is MISSING
                and f.name not in data and f.name != "source_file"]
    if missing:
        raise HarnessError(f"{path}: missing field '{missing[0]}'")
    hints = typing.get_type_hints(cls)
    for key, value in data.items():  # the declared types (specs.py), so a wrong one fails here, not mid-run
        if not accepts(hints[key], value):
            wanted = getattr(hints[key], "__name__", None) or type_name(hints[key])
            raise HarnessError(f"{path}: field '{key}' must be {wanted}, got {type(value).__name__} {value!r}"[:300])
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
    unknown = sorted(set(card.chat) - set(CHAT_KEYS))
    if unknown:
        raise HarnessError(f"{path}: chat: unknown key '{unknown[0]}' (known: {', '.join(CHAT_KEYS)})")
    _check_published(card.published, path)
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
    _resolve_prompts(data, path)
    data["columns"], data["subsets"] = check_card_format(
        data.get("columns"), data.setdefault("label_shape", "list"), data.get("subsets"), str(path))
    try:
        data["decoding"] = Decoding.from_dict(data.get("decoding"))
    except HarnessError as exc:
        raise HarnessError(f"{path}: {exc}") from None
    return _build(BenchSpec, data, path, ("name", "version", "dataset", "split", "metrics"))


def _resolve_prompts(data: dict, path: Path) -> None:
    """`prompts:` {name: suffix} + `default_prompt:`, or a lone `prompt_suffix:` (then named "default")."""
    prompts = data.get("prompts")
    if prompts is None:
        data["prompts"] = {"default": data.setdefault("prompt_suffix", "")}
        data["default_prompt"] = "default"
        return
    if not isinstance(prompts, dict) or not prompts or not all(isinstance(v, str) for v in prompts.values()):
        raise HarnessError(f"{path}: prompts must map variant names to prompt suffixes")
    if "prompt_suffix" in data:
        raise HarnessError(f"{path}: give either prompt_suffix or prompts + default_prompt, not both")
    default = data.get("default_prompt")
    if default not in prompts:
        raise HarnessError(f"{path}: default_prompt {default!r} is not one of prompts ({', '.join(prompts)})")
    data["prompts"] = {str(k): v for k, v in prompts.items()}
    data["prompt_suffix"] = prompts[default]


def prompt_variant(bench: BenchSpec, name: str | None) -> tuple[str, str]:
    """(name, suffix) of the benchmark's prompt variant `name` (None: its default)."""
    name = name or bench.default_prompt
    if name not in bench.prompts:
        raise HarnessError(f"--prompt {name}: benchmark {bench.name} has no such prompt "
                           f"(known: {', '.join(bench.prompts)})")
    return name, bench.prompts[name]


PUBLISHED_KEYS = {"benchmark", "metric", "value", "subset", "source", "note", "split"}


def _check_published(entries, path: Path) -> None:
    """`published:` reference scores: a list of {benchmark, metric, value, source, subset?, note?}."""
    if not isinstance(entries, list):
        raise HarnessError(f"{path}: published must be a list of {{benchmark, metric, value, source}}")
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict):
            raise HarnessError(f"{path}: published[{i}] must be a mapping")
        unknown = sorted(set(entry) - PUBLISHED_KEYS)
        if unknown:
            raise HarnessError(f"{path}: published[{i}]: unknown key '{unknown[0]}' "
                               f"(known: {', '.join(sorted(PUBLISHED_KEYS))})")
        for key in ("benchmark", "metric", "source"):
            if not str(entry.get(key) or "").strip():
                raise HarnessError(f"{path}: published[{i}] needs '{key}'")
        if entry["benchmark"] not in _names("benchmarks"):
            raise HarnessError(f"{path}: published[{i}]: no benchmark card '{entry['benchmark']}' "
                               f"(known: {', '.join(_names('benchmarks'))})")
        if isinstance(entry.get("value"), bool) or not isinstance(entry.get("value"), int | float):
            raise HarnessError(f"{path}: published[{i}].value must be a number, got {entry.get('value')!r}")


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
