"""Fixtures for the container tests: the engine (or one skip line saying why not) and the images."""

from __future__ import annotations

import os

import pytest

from harness.registry import list_models
from harness.runners.docker import image_for

# One per image the cards name (cards with the same pins share one): {image name: a card that runs in it}.
IMAGES = {card.image: card.name for card in reversed(list_models())}
# Set by scripts/docker-ci.sh after it built the images: then a missing image fails instead of skipping.
EXPECT_IMAGES = os.environ.get("HARNESS_EXPECT_IMAGES") == "1"


@pytest.fixture(scope="session")
def docker_client():
    """A client of a reachable engine; skips the test with one line when there is none."""
    from docker.client import from_env

    try:
        client = from_env()
        client.ping()
    except Exception as exc:  # any reason: no socket, permission, engine down
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        pytest.skip(f"no Docker engine reachable ({reason[:120]})")
    return client


def _image_or_skip(client, name: str) -> str:
    from docker.errors import ImageNotFound

    try:
        client.images.get(name)
    except ImageNotFound:
        if EXPECT_IMAGES:
            pytest.fail(f"image {name} missing after scripts/docker-ci.sh")
        pytest.skip(f"image {name} not built (scripts/docker-ci.sh builds it)")
    return name


@pytest.fixture(scope="session")
def base_image(docker_client) -> str:
    return _image_or_skip(docker_client, image_for("base"))


@pytest.fixture(scope="session", params=sorted(IMAGES))
def model_image(request, docker_client) -> str:
    return _image_or_skip(docker_client, image_for(IMAGES[request.param], name=request.param))


@pytest.fixture(scope="session")
def any_model_image(docker_client) -> str:
    """The first model image that exists (for behaviour that is the same in all of them)."""
    from docker.errors import ImageNotFound

    for image, model in sorted(IMAGES.items()):
        try:
            docker_client.images.get(image_for(model, name=image))
            return image_for(model, name=image)
        except ImageNotFound:
            continue
    if EXPECT_IMAGES:
        pytest.fail("no harness-<model> image after scripts/docker-ci.sh")
    pytest.skip("no harness-<model> image built (scripts/docker-ci.sh builds them)")
