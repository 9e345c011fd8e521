"""`harness doctor MODEL`: installed versions against the card's pinned environment."""

from __future__ import annotations

import pytest

from harness import doctor
from harness.cli import main
from harness.specs import ModelCard


def _card(**environment) -> ModelCard:
    return ModelCard(name="m", display_name="M", family="f", adapter="a:b", hub_id="h", revision="r" * 40,
                     environment=environment,
                     environment_notes={"transformers": "its Phi class lacks GenerationMixin"})


@pytest.fixture
def installed(monkeypatch):
    versions = {"transformers": "5.24.0", "peft": "0.21.2", "torch": "2.14.1+cu130"}
    monkeypatch.setattr(doctor, "_installed", versions.get)
    return versions


def test_mismatch_line_names_version_pin_and_reason(installed):
    problems = doctor.check_card(_card(transformers=">=4.44,<4.50"))
    assert problems == ["transformers 5.24.0 installed, needs >=4.44,<4.50 (its Phi class lacks GenerationMixin)"]


def test_missing_package_and_satisfied_pins(installed):
    assert doctor.check_card(_card(einops=">=0.7")) == ["einops not installed, needs >=0.7"]
    # A local version label (+cu130) still satisfies a plain pin.
    assert doctor.check_card(_card(transformers="==5.24.0", torch="==2.14.1", peft=">=0.13")) == []


def test_invalid_pin_is_reported(installed):
    (line,) = doctor.check_card(_card(peft="about 0.14"))
    assert "invalid pin 'about 0.14'" in line


def test_cli_exit_codes_and_lines(installed, capsys):
    assert main(["doctor", "moondream"]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert "moondream: transformers 5.24.0 installed, needs >=4.44,<4.49 (2024 remote code's " \
           "prepare_inputs_for_generation calls Cache.get_max_length, removed in 4.49" in "\n".join(lines)
    assert all(line.startswith("moondream: ") for line in lines)
    installed.update({"torchvision": "0.29.1"})
    assert main(["doctor", "smolvlm"]) == 0
    assert capsys.readouterr().out.startswith("smolvlm: ok (")


def test_every_card_pins_its_environment():
    from harness.registry import list_models

    for card in list_models():
        assert "transformers" in card.environment, card.name
        assert set(card.environment_notes) <= set(card.environment), card.name


def _lock_pins(path):
    pins = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if "==" in line and not line.startswith("-"):
            name, _, version = line.partition("==")
            pins[name.strip().lower()] = version.split(";")[0].split()[0].strip()
    return pins


def test_docker_locks_satisfy_the_cards():
    """The card's `environment` is the source of truth; each model image's lock must satisfy it."""
    from packaging.specifiers import SpecifierSet

    from harness.registry import config_root, list_models

    docker = config_root() / "docker"
    if not docker.is_dir():
        pytest.skip("no docker/ folder in this checkout")
    base = {}
    for lock in (docker / "base").glob("*.lock"):
        base.update(_lock_pins(lock))
    checked = 0
    for card in list_models():
        lock = docker / card.image.removeprefix("harness-") / "requirements.lock"
        if not card.image or not lock.exists():
            continue
        pins = {**base, **_lock_pins(lock)}
        for package, spec in card.environment.items():
            if package.lower() in pins:
                checked += 1
                assert SpecifierSet(spec).contains(pins[package.lower()], prereleases=True), (
                    f"{card.name}: {lock} pins {package}=={pins[package.lower()]}, the card needs {spec}")
    assert checked
