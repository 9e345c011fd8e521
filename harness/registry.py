"""Reads the declarative files: models/*.yaml, benchmarks/*.yaml, presets/*.yaml.

Also resolves lazy "module:attr" names, so adapters and twin builders import only when used.
"""

from __future__ import annotations

import importlib
import os
from dataclasses import fields
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from harness.errors import HarnessError
from harness.specs import BenchSpec, Decoding, ModelCard, Preset

__all__ = [
    "config_root",
    "list_models",
    "load_benchmark",
    "load_model",
    "load_preset",
    "resolve_object",
]


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


@cache
def load_model(name: str) -> ModelCard:
    path = _path("models", name)
    data = _read_yaml(path)
    card = _build(ModelCard, data, path, ("name", "family", "adapter", "hub_id", "revision"))
    if card.name != name:
        raise HarnessError(f"{path}: field 'name' is '{card.name}', expected '{name}' (the file name)")
    return card


@cache
def load_benchmark(name: str) -> BenchSpec:
    path = _path("benchmarks", name)
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
def load_preset(name: str) -> Preset:
    path = _path("presets", name)
    data = _read_yaml(path)
    for key, default in (("synthetic", {}), ("bench", {}), ("finetune", {}), ("paths", {})):
        data[key] = data.get(key) or default
    data.setdefault("device", None)
    data.setdefault("dtype", None)
    data.setdefault("banner", "")
    data.setdefault("description", "")
    data.setdefault("use_twins", False)
    return _build(Preset, data, path, ("name",))


def resolve_object(ref: str) -> Any:
    """Import "package.module:attr" lazily, with a one-line error naming the reference."""
    module_name, _, attr = ref.partition(":")
    if not module_name or not attr:
        raise HarnessError(f"'{ref}' is not a 'module:attribute' reference")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise HarnessError(f"cannot import {module_name} for '{ref}': {exc}") from None
    try:
        return getattr(module, attr)
    except AttributeError:
        raise HarnessError(f"{module_name} has no attribute '{attr}' (from '{ref}')") from None
