"""The real loading path (hub id + pinned revision) runs offline from a hub-layout cache.

Only the download differs from a real run: the twin's files sit where `from_pretrained` would
have put the real model's, and HF_HUB_OFFLINE=1 forbids any network access. huggingface_hub
reads these variables at import time, so each check runs in a fresh interpreter.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from harness.adapters.twins.cache import ensure_twin
from harness.registry import load_model

pytestmark = pytest.mark.integration

SCRIPT = """
import sys
from pathlib import Path
from harness.adapters import open_adapter
from harness.data import load_split, write_synthetic
from harness.registry import load_model
from harness.specs import Decoding
card = load_model("qwen2vl")
adapter = open_adapter(card.name, card.hub_id, sys.argv[1], dtype="float32", device="cpu", cache=Path(sys.argv[2]))
print("LOADED_FROM", adapter.model.name_or_path)
data = load_split(str(write_synthetic(Path(sys.argv[3]), sizes={"train": 0, "val": 0, "test": 2}, seed=2)), "test")
texts, counts = adapter.decode(adapter.generate(adapter.prepare(list(data), ""), Decoding(max_new_tokens=3)))
print("GENERATED", counts)
"""


def _run(tmp_path: Path, cache: Path, revision: str, hf_home: Path):
    env = {**os.environ, "HF_HOME": str(hf_home), "HF_HUB_OFFLINE": "1", "HF_TOKEN": "hf_never_printed_secret"}
    return subprocess.run([sys.executable, "-c", SCRIPT, revision, str(cache), str(tmp_path / "d")],
                          capture_output=True, text=True, env=env, timeout=300)


def test_hub_id_and_revision_load_offline(harness_cache, tmp_path):
    card = load_model("qwen2vl")
    twin = ensure_twin(card, Path(harness_cache))
    repo = tmp_path / "hf" / "hub" / ("models--" + card.hub_id.replace("/", "--"))
    snapshot = repo / "snapshots" / card.revision
    shutil.copytree(twin, snapshot)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(card.revision)
    done = _run(tmp_path, Path(harness_cache), card.revision, tmp_path / "hf")
    assert done.returncode == 0, done.stderr[-2000:]
    # Loaded by hub id with no network: the files can only have come from the pinned snapshot.
    assert f"LOADED_FROM {card.hub_id}" in done.stdout
    assert "GENERATED [" in done.stdout
    assert "hf_never_printed_secret" not in done.stdout + done.stderr


def test_unknown_revision_fails_in_one_line(harness_cache, tmp_path):
    done = _run(tmp_path, Path(harness_cache), "0" * 40, tmp_path / "empty")
    assert done.returncode != 0
    assert "qwen2vl: cannot load Qwen/Qwen2-VL-2B-Instruct@0000" in done.stderr
