"""What a run records of its image: tag and harness commit baked in at build time, id and digest
passed in by the runner. Static and fake-engine checks run anywhere; the last one needs the images."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest
import yaml

from harness.runners import docker as runner

pytestmark = pytest.mark.docker

REPO = Path(__file__).resolve().parents[2]


def test_the_model_image_bakes_its_tag_and_commit_into_the_environment():
    text = (REPO / "docker/model.Dockerfile").read_text()
    final = text[text.rindex("\nFROM "):]  # the image itself, not the discarded builder
    assert "ARG HARNESS_IMAGE=harness-${IMAGE}:${HARNESS_VERSION}" in final
    assert re.search(r"ARG HARNESS_GIT_SHA\n", final)
    assert re.search(r"ENV HARNESS_IMAGE=\$\{HARNESS_IMAGE\} \\\n\s+HARNESS_GIT_SHA=\$\{HARNESS_GIT_SHA\}", final)
    # After the last COPY: a new commit must not invalidate the layers below.
    assert final.rindex("COPY ") < final.index("ARG HARNESS_GIT_SHA")
    assert "HARNESS_GIT_SHA" not in text[: text.rindex("\nFROM ")]
    base = (REPO / "docker/base/Dockerfile").read_text()
    assert "HARNESS_BASE_IMAGE=${BASE_IMAGE}" in base[base.rindex("\nFROM "):]
    for file in ("compose.yaml", "compose.cpu.yaml"):
        for name, service in yaml.safe_load((REPO / file).read_text())["services"].items():
            if name == "base":
                continue
            args = service["build"]["args"]
            assert args["HARNESS_IMAGE"] == service["image"], (file, name)
            assert args["HARNESS_GIT_SHA"] == "${HARNESS_GIT_SHA:-}", (file, name)


class _Image:
    id = "sha256:" + "1" * 64
    attrs = {"RepoDigests": ["registry.example/harness-qwen2vl@sha256:" + "9" * 64,
                             "harness-qwen2vl@sha256:" + "2" * 64]}


class _Container:
    id = "c0ffee"
    attrs = {"State": {"ExitCode": 0}}

    def start(self):
        pass

    def logs(self, **kwargs):
        return iter([b"done\n"])

    def wait(self):
        return {"StatusCode": 0}

    def reload(self):
        pass

    def remove(self, **kwargs):
        pass


class _Client:
    def __init__(self):
        self.created = {}
        client = self

        class Images:
            def get(self, name):
                return _Image()

        class Containers:
            def create(self, image, **kwargs):
                client.created = kwargs
                return _Container()

        self.images, self.containers = Images(), Containers()


def test_the_runner_passes_the_image_id_and_digest_in(monkeypatch):
    client = _Client()
    monkeypatch.setattr(runner, "_client", lambda: client)
    outcome = runner.run_in_image("harness-qwen2vl:0.1.0", ["--help"], gpu=False, env={"X": "1"})
    assert outcome.ok
    env = client.created["environment"]
    assert env["HARNESS_IMAGE"] == "harness-qwen2vl:0.1.0" and env["HARNESS_IMAGE_ID"] == _Image.id
    assert env["HARNESS_IMAGE_DIGEST"] == "harness-qwen2vl@sha256:" + "2" * 64  # the digest of this repository
    assert env["X"] == "1"
    runner.run_in_image("harness-qwen2vl:0.1.0", ["--help"], gpu=False, env={"HARNESS_IMAGE": "mine"})
    assert client.created["environment"]["HARNESS_IMAGE"] == "mine"  # the caller's value wins


def test_a_container_manifest_names_its_image(docker_client, model_image):
    command = "from harness.manifest import environment_manifest as m; import json; print(json.dumps(m('cpu')))"
    out = docker_client.containers.run(model_image, ["-c", command], entrypoint="python", remove=True,
                                       network_mode="none").decode()
    manifest = json.loads(out.strip().splitlines()[-1])
    assert manifest["image"] == model_image
    assert manifest["base_image"]
    if os.environ.get("HARNESS_GIT_SHA"):  # scripts/docker-ci.sh builds with the checkout's commit
        assert manifest["harness_git_sha"] == os.environ["HARNESS_GIT_SHA"]
