"""compose.yaml / compose.cpu.yaml are generated from the cards (scripts/compose-gen.py) and one image serves
every card with the same pins (docker/<image>/, one folder per image, not per model)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from harness.registry import list_models

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "compose-gen.py"
# The mission's named services: they must stay whatever the registry grows into.
NAMED = {"finetune-moondream", "finetune-smolvlm", "finetune-qwen2vl",
         "bench-moondream", "bench-moondream2025", "bench-smolvlm", "bench-qwen2vl"}


def _gen(root: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), "--root", str(root), *args], capture_output=True, text=True,
                          timeout=120)


def _pins(lock: Path) -> dict[str, str]:
    lines = (line.split("#")[0].strip() for line in lock.read_text().splitlines())
    return dict(line.lower().split("==", 1) for line in lines if "==" in line)


@pytest.fixture
def root(tmp_path):
    """A copy of what the generator reads: cards, benchmark cards (published scores name them), locks, compose."""
    for folder in ("models", "benchmarks"):
        shutil.copytree(REPO / folder, tmp_path / folder)
    for lock in REPO.glob("docker/*/requirements.lock"):
        (tmp_path / lock.parent.relative_to(REPO)).mkdir(parents=True)
        shutil.copy(lock, tmp_path / lock.relative_to(REPO))
    for name in ("compose.yaml", "compose.cpu.yaml"):
        shutil.copy(REPO / name, tmp_path / name)
    return tmp_path


def test_compose_files_are_up_to_date_with_the_cards():
    proc = _gen(REPO, "--check")
    assert proc.returncode == 0, proc.stderr[-3000:]


def test_a_new_card_makes_compose_stale_until_regenerated(root):
    template = load_card_text("smolvlm")
    (root / "models" / "newvlm.yaml").write_text(re.sub(r"(?m)^name: smolvlm$", "name: newvlm", template))
    stale = _gen(root, "--check")
    assert stale.returncode == 1 and "compose.yaml, compose.cpu.yaml out of date" in stale.stderr, stale.stderr
    assert _gen(root).returncode == 0 and _gen(root, "--check").returncode == 0
    image = yaml.safe_load(template)["image"]
    for name in ("compose.yaml", "compose.cpu.yaml"):
        services = yaml.safe_load((root / name).read_text())["services"]
        assert services["finetune-newvlm"]["entrypoint"] == ["harness", "finetune", "newvlm"], name
        assert services["bench-newvlm"]["image"] == services["bench-smolvlm"]["image"], name
        assert services["bench-newvlm"]["image"].startswith(f"{image}:"), name
        assert services["bench-newvlm"]["build"] == services["bench-smolvlm"]["build"], name  # the same image
        assert NAMED <= set(services), name


def test_a_benchmark_only_card_gets_no_finetune_service(root):
    services = yaml.safe_load((root / "compose.yaml").read_text())["services"]
    assert "bench-moondream2025" in services and "finetune-moondream2025" not in services
    assert {"finetune", "bench"} <= set(services)


def test_a_card_whose_image_has_no_lock_is_one_line(root):
    card = root / "models" / "smolvlm.yaml"
    card.write_text(re.sub(r"(?m)^image: .*$", "image: harness-nowhere", card.read_text()))
    proc = _gen(root, "--check")
    assert proc.returncode == 2, proc.stderr
    (line,) = proc.stderr.strip().splitlines()
    assert "smolvlm.yaml" in line and "'harness-nowhere'" in line and "docker/nowhere/requirements.lock" in line


def test_the_generic_services_default_to_the_most_shared_image():
    counts: dict[str, int] = {}
    for card in list_models():
        counts[card.image] = counts.get(card.image, 0) + 1
    most = max(counts.values())
    expected = min(image for image, n in counts.items() if n == most).removeprefix("harness-")
    services = yaml.safe_load((REPO / "compose.yaml").read_text())["services"]
    assert services["bench"]["build"]["args"]["IMAGE"] == "${HARNESS_MODEL_IMAGE:-" + expected + "}"


def test_one_docker_folder_per_image_and_one_image_per_pinned_set():
    """Every card's image has its folder; no folder is left without a card; two folders never pin the same set."""
    cards = list_models()
    images = {card.image.removeprefix("harness-") for card in cards}
    images |= {b["image"].removeprefix("harness-") for card in cards for b in card.backends.values() if b.get("image")}
    folders = {p.parent.name for p in REPO.glob("docker/*/requirements.in")}
    assert {card.image.removeprefix("harness-") for card in cards} <= folders, "a card's image has no docker/ folder"
    assert folders <= images, f"docker/ folders no card names as its image: {sorted(folders - images)}"
    locks = {name: _pins(REPO / "docker" / name / "requirements.lock") for name in sorted(folders)}
    same = [(a, b) for a in locks for b in locks if a < b and locks[a] == locks[b]]
    users = {name: [c.name for c in cards if c.image == f"harness-{name}"] for name in locks}
    assert not same, "images with the same pins: make them one (the cards' `image:`): " + "; ".join(
        f"docker/{a} ({', '.join(users[a])}) = docker/{b} ({', '.join(users[b])})" for a, b in same)


def load_card_text(name: str) -> str:
    return (REPO / "models" / f"{name}.yaml").read_text()
