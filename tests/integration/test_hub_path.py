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
from harness.plan import facts_for
from harness.data import load_split, write_synthetic
from harness.registry import load_model
from harness.specs import Decoding
card = load_model("qwen2vl")
adapter = open_adapter(facts_for(card.name), card.hub_id, sys.argv[1], dtype="float32", device="cpu",
                       cache=Path(sys.argv[2]))
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


MOONDREAM_SCRIPT = """
import sys
from pathlib import Path
import harness.adapters.moondream as md
from harness.adapters import open_adapter
from harness.plan import facts_for
from harness.registry import load_model
md.require_environment = lambda card, request: None  # twin code is version-neutral; the pin is tested elsewhere
card = load_model("moondream")
adapter = open_adapter(facts_for(card.name), card.hub_id, card.revision, dtype="float32", device="cpu",
                       cache=Path(sys.argv[1]), adapter_source=card.study["hub_id"], adapter_revision="main",
                       adapter_kind=card.study["kind"])
module = sys.modules[type(adapter.model).__module__]
print("CLASS", module.__name__, getattr(module, "CODE_FROM", "pinned"))
"""


def _hub_repo(hub: Path, repo_id: str, refs: dict[str, Path]) -> None:
    """refs name -> folder to serve as that ref's snapshot, under a made-up commit hash."""
    repo = hub / ("models--" + repo_id.replace("/", "--"))
    (repo / "refs").mkdir(parents=True)
    for i, (ref, folder) in enumerate(refs.items()):
        commit = f"{i + 1:x}" * 40
        shutil.copytree(folder, repo / "snapshots" / commit)
        (repo / "refs" / ref).write_text(commit)


def _marked(twin: Path, where: Path, mark: str) -> Path:
    shutil.copytree(twin, where)
    with open(where / "moondream.py", "a") as f:
        f.write(f"\nCODE_FROM = {mark!r}\n")
    return where


def test_moondream_study_checkpoint_runs_the_pinned_revisions_code(harness_cache, tmp_path):
    """A checkpoint whose auto_map says `vikhyatk/moondream2--moondream.Moondream` (the study's, pushed
    after loading the base by hub id) must run the base's pinned code, not `main`'s (the 2025 code)
    and not the .py files beside its weights (transformers ignores those once the prefix is there)."""
    from harness.adapters.twins.moondream import prefix_auto_map

    card = load_model("moondream")
    twin = ensure_twin(card, Path(harness_cache))
    hub = tmp_path / "hf" / "hub"
    _hub_repo(hub, card.hub_id, {card.revision: twin, "main": _marked(twin, tmp_path / "main", "main")})
    study = _marked(twin, tmp_path / "study", "checkpoint")
    prefix_auto_map(study, card.hub_id)
    _hub_repo(hub, card.study["hub_id"], {"main": study})
    env = {**os.environ, "HF_HOME": str(tmp_path / "hf"), "HF_HUB_OFFLINE": "1"}
    done = subprocess.run([sys.executable, "-c", MOONDREAM_SCRIPT, str(harness_cache)], capture_output=True,
                          text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    pinned = (hub / "models--vikhyatk--moondream2" / "refs" / card.revision).read_text()
    line = next(x for x in done.stdout.splitlines() if x.startswith("CLASS "))
    assert line == f"CLASS transformers_modules.vikhyatk.moondream2.{pinned}.moondream pinned", line
