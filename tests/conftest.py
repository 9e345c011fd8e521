"""Shared fixtures: one cache of twins and synthetic data per test session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def harness_cache(tmp_path_factory) -> Path:
    """A cache folder for twins and generated data, shared by every test of the session."""
    path = Path(os.environ.get("HARNESS_TEST_CACHE") or tmp_path_factory.mktemp("harness-cache"))
    return path


@pytest.fixture
def harness_env(harness_cache, tmp_path, monkeypatch) -> Path:
    """Isolated results/checkpoints for one test, the session's cache, configs from the repo."""
    monkeypatch.setenv("HARNESS_CACHE_DIR", str(harness_cache))
    monkeypatch.setenv("HARNESS_CONFIG_DIR", str(REPO))
    monkeypatch.setenv("HARNESS_RESULTS_DIR", str(tmp_path / "results"))
    monkeypatch.setenv("HARNESS_CHECKPOINTS_DIR", str(tmp_path / "checkpoints"))
    monkeypatch.delenv("HARNESS_PRESET", raising=False)
    return tmp_path


@pytest.fixture
def config_copy(tmp_path, monkeypatch) -> Path:
    """A copy of models/, benchmarks/ and presets/ to edit as a user would (HARNESS_CONFIG_DIR points at it)."""
    import shutil

    root = tmp_path / "config"
    for kind in ("models", "benchmarks", "presets"):
        shutil.copytree(REPO / kind, root / kind)
    monkeypatch.setenv("HARNESS_CONFIG_DIR", str(root))
    return root
