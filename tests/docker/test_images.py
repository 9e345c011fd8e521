"""Built images, checked through a running engine: no secrets, non-root, pinned versions, runner."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest

from harness.errors import HarnessError
from harness.runners.docker import run_in_image

pytestmark = pytest.mark.docker

REPO = Path(__file__).resolve().parents[2]


def docker_cli(*args: str) -> str:
    """Output of a docker CLI command (for views the CLI renders, like `history --no-trunc`)."""
    return subprocess.run(["docker", *args], check=True, capture_output=True, text=True).stdout


def _extra_ca_bodies() -> list[str]:
    """Base64 bodies of the certificates in docker/certs/ (trusted at build time only)."""
    bodies = []
    for crt in sorted((REPO / "docker/certs").glob("*.crt")):
        for block in re.findall(r"-----BEGIN CERTIFICATE-----(.+?)-----END", crt.read_text(), re.S):
            bodies.append("".join(block.split())[:200])
    return bodies


def _shell(client, image: str, command: str) -> str:
    out = client.containers.run(image, ["-c", command], entrypoint="/bin/bash", remove=True, network_mode="none")
    return out.decode()


def test_base_image_exists(base_image):
    assert base_image.startswith("harness-base:")


def test_no_secrets_in_image_config_or_history(docker_client, model_image, base_image):
    for image in (base_image, model_image):
        config = docker_cli("image", "inspect", image)
        history = docker_cli("history", "--no-trunc", "--format", "{{.CreatedBy}}", image)
        env = json.loads(config)[0]["Config"]["Env"]
        assert not [e for e in env if e.split("=", 1)[0] in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN")], env
        token = os.environ.get("HF_TOKEN")
        for text, what in ((config, "inspect"), (history, "history")):
            if token:
                assert token not in text, f"{image}: the HF_TOKEN value is in `docker {what}`"
            assert "PRIVATE KEY" not in text
            # The builder stages trust docker/certs and point pip at it; the shipped stage does neither.
            assert "/tmp/certs" not in text and "PIP_CERT" not in text, f"{image}: build-stage cert setup in {what}"


def test_extra_ca_certificates_stay_in_the_builder(docker_client, model_image):
    bodies = _extra_ca_bodies()
    if not bodies:
        pytest.skip("docker/certs holds no *.crt (nothing to leak)")
    trusted = "ls /usr/local/share/ca-certificates; cat /etc/ssl/certs/*.crt 2>/dev/null"
    listing = _shell(docker_client, model_image, trusted)
    flat = "".join(listing.split())
    leaked = [b[:24] for b in bodies if b in flat]
    # The host bundle (when CI copied all of it) shares public roots with Debian's: only count
    # certificates that the image's distribution does not ship itself.
    distro = "".join(_shell(docker_client, model_image, "cat /usr/share/ca-certificates/*/*.crt").split())
    leaked = [b for b in leaked if b not in distro]
    assert not leaked, f"{model_image}: extra CA certificates in the runtime image: {leaked}"


def test_runs_as_non_root(docker_client, model_image):
    user = docker_client.images.get(model_image).attrs["Config"]["User"]
    assert user and user.split(":")[0] not in ("0", "root"), f"{model_image} runs as {user!r}"
    assert _shell(docker_client, model_image, "id -u").strip() != "0"


def test_image_has_the_locked_versions(docker_client, model_image):
    model = model_image.split(":")[0].removeprefix("harness-")
    pins = {}
    for line in (REPO / "docker" / model / "requirements.lock").read_text().splitlines():
        if "==" in line and not line.lstrip().startswith("#"):
            name, version = line.strip().split("==")
            pins[name] = version
    torch_pins = dict(
        line.strip().split("==")
        for line in (REPO / "docker/base/torch-cuda.lock").read_text().splitlines()
        if "==" in line and not line.lstrip().startswith("#")
    )
    script = (
        "import importlib.metadata as m, json; "
        "print(json.dumps({n: m.version(n) for n in ['torch', 'torchvision', 'transformers', 'peft', 'accelerate']}))"
    )
    out = docker_client.containers.run(
        model_image, ["-c", script], entrypoint="python", remove=True, network_mode="none"
    )
    found = json.loads(out.decode().strip().splitlines()[-1])
    assert found["torch"] == torch_pins["torch"] and found["torchvision"] == torch_pins["torchvision"]
    for name in ("transformers", "peft", "accelerate"):
        assert found[name] == pins[name], f"{model_image}: {name} {found[name]} != lock {pins[name]}"


def test_harness_entrypoint_answers(docker_client, model_image):
    out = docker_client.containers.run(model_image, ["--help"], remove=True, network_mode="none").decode()
    assert "finetune" in out and "bench" in out


# ------------------------------------------------------------------------------ run_in_image


def test_run_in_image_reports_a_failing_command(any_model_image, tmp_path):
    lines: list[str] = []
    outcome = run_in_image(
        any_model_image,
        ["bench", "--model", "no-such-model", "--no-leaderboard"],
        volumes={tmp_path / "results": "/data/results"},
        gpu=False,
        on_log=lines.append,
    )
    assert outcome.exit_code not in (0, None)
    assert not outcome.ok and outcome.log_tail and outcome.log_tail == lines[-len(outcome.log_tail) :]
    assert "no-such-model" in "\n".join(outcome.log_tail)
    assert outcome.image == any_model_image and outcome.container_id
    with pytest.raises(HarnessError, match=f"exited with {outcome.exit_code}"):
        outcome.check()


def test_run_in_image_reports_an_oom_kill(any_model_image):
    outcome = run_in_image(any_model_image, ["models"], gpu=False, mem_limit="8m")
    # Too little memory even to start Python: the kernel kills it (137) or the runtime refuses it.
    assert outcome.exit_code != 0
    if outcome.exit_code == 137:
        assert "SIGKILL" in outcome.describe() or outcome.oom_killed


def test_run_in_image_masks_the_token_and_removes_the_container(any_model_image, docker_client, monkeypatch):
    token = "hf_test_token_value_1234567890"
    monkeypatch.setenv("HF_TOKEN", token)
    lines: list[str] = []
    # The CLI echoes an unknown model name back: the token comes back out of the container in a log line.
    outcome = run_in_image(
        any_model_image, ["bench", "--model", token, "--no-leaderboard"], gpu=False, on_log=lines.append
    )
    text = "\n".join(lines + outcome.log_tail)
    assert token not in text and "***" in text
    assert not docker_client.containers.list(all=True, filters={"id": outcome.container_id})


def test_run_in_image_names_the_build_command_for_a_missing_image(docker_client):
    with pytest.raises(
        HarnessError,
        match=r"image harness-qwen2vl:no-such-tag not found: build it with "
        r"`HARNESS_MODEL_IMAGE=qwen2vl docker compose build bench`",
    ):
        run_in_image("harness-qwen2vl:no-such-tag", ["models"], gpu=False)


def test_run_in_image_writes_files_owned_by_the_caller(any_model_image, tmp_path):
    results = tmp_path / "results"
    argv = ["data", "synth", "--out", "/data/results/synth", "--train", "2", "--val", "1", "--test", "1"]
    outcome = run_in_image(any_model_image, argv, volumes={results: "/data/results"}, gpu=False)
    assert outcome.ok, outcome.log_tail
    written = [p for p in (results / "synth").rglob("*") if p.is_file()]
    assert written, "data synth wrote nothing to the mounted folder"
    assert {p.stat().st_uid for p in written} == {os.getuid()}
