"""A token passed to a container run stays out of every harness image (issue 11, part 7).

A planted HF_TOKEN goes into one container run through the runner's path (`run_in_image`, which passes
it from the host environment); afterwards `docker history --no-trunc` and `docker inspect` of every
harness-* image must not contain it, and no image may carry HF_TOKEN in its Env. (Non-root: see
tests/docker/test_images.py::test_runs_as_non_root.)
"""

from __future__ import annotations

import json
import subprocess

import pytest

from harness.runners.docker import IMAGE_PREFIX, run_in_image

pytestmark = pytest.mark.docker

TOKEN = "hf_PLANTEDtoken1234567890dockerXYZ"


def _docker(*args: str) -> str:
    return subprocess.run(["docker", *args], check=True, capture_output=True, text=True).stdout


def test_a_planted_token_is_in_no_image_history_or_config(docker_client, any_model_image, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    lines: list[str] = []
    outcome = run_in_image(any_model_image, ["models"], gpu=False, on_log=lines.append,
                           volumes={tmp_path / "results": "/data/results"})
    assert outcome.ok, outcome.describe()
    assert TOKEN not in "\n".join(lines + outcome.log_tail)
    images = sorted({tag for image in docker_client.images.list() for tag in image.tags
                     if tag.startswith(IMAGE_PREFIX)})
    assert any_model_image in images
    for image in images:
        config = _docker("image", "inspect", image)
        history = _docker("history", "--no-trunc", image)
        assert TOKEN not in config and TOKEN not in history, f"{image}: the planted token is in the image"
        env = json.loads(config)[0]["Config"]["Env"] or []
        baked = [e for e in env if e.split("=", 1)[0] in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN")]
        assert not baked, f"{image}: HF_TOKEN baked into its Env"
    assert not [p for p in tmp_path.rglob("*") if p.is_file() and TOKEN.encode() in p.read_bytes()]

