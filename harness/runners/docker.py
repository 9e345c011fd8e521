"""Run one harness command inside a model's image, through the Docker engine API (docker SDK).

Host side only: no torch here. The image names follow the convention of compose.yaml,
`harness-<model>:<tag>` with the harness version as the default tag, so that
`docker compose build` makes exactly what `--runner docker` looks for.

What callers get back is a `ContainerOutcome`; a command that fails inside the container (a bad
argument, an exception, an OOM kill) is an outcome with its exit code and last log lines, not an
exception. What the user must fix on the host (no engine, no image, no GPU support in the engine)
is one `HarnessError` line.
"""

from __future__ import annotations

import os
import re
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import requests
from docker.client import DockerClient, from_env
from docker.errors import APIError, DockerException, ImageNotFound
from docker.types import DeviceRequest

from harness import __version__
from harness.errors import HarnessError

__all__ = [
    "CONTAINER_CACHE",
    "CONTAINER_CHECKPOINTS",
    "CONTAINER_HF_CACHE",
    "CONTAINER_RESULTS",
    "ContainerOutcome",
    "IMAGE_PREFIX",
    "host_gpu_ids",
    "host_has_nvidia_gpu",
    "image_for",
    "run_in_image",
    "standard_volumes",
]

IMAGE_PREFIX = "harness-"
TAG_ENV = "HARNESS_IMAGE_TAG"
# Passed from the host's environment into the container when set there, and only then. Values of
# these variables are masked in everything this module hands back (log lines, error messages).
PASSTHROUGH_SECRETS = ("HF_TOKEN",)
# Passed through the same way but not secret, so never masked: HF_HUB_OFFLINE=1 on the host keeps the
# containers off the hub too (they then load only from the shared HF cache), as compose's services do.
# HARNESS_VERBOSE (`--verbose`) sends the container's third-party output to the terminal as well.
PASSTHROUGH_SETTINGS = ("HF_HUB_OFFLINE", "HARNESS_VERBOSE")
LOG_TAIL_LINES = 20
# Where the images expect their data (docker/base/Dockerfile sets HARNESS_*_DIR and HF_HOME to these).
CONTAINER_RESULTS = "/data/results"
CONTAINER_CHECKPOINTS = "/data/checkpoints"
CONTAINER_CACHE = "/data/cache"
CONTAINER_HF_CACHE = "/data/hf-cache"

# Exit codes a shell reports for signals: 128 + signal number.
_SIGNALS = {130: "SIGINT", 134: "SIGABRT", 137: "SIGKILL", 139: "SIGSEGV", 143: "SIGTERM"}


@dataclass(frozen=True)
class ContainerOutcome:
    """How one container run ended. `log_tail` holds the last lines, secrets masked."""

    exit_code: int
    log_tail: list[str]
    image: str
    container_id: str
    oom_killed: bool = False
    argv: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.exit_code == 0

    def describe(self) -> str:
        """One line: what ran, how it ended, and why when the engine knows."""
        how = f"exited with {self.exit_code}"
        if self.oom_killed:
            how += " (killed: out of memory; lower --batch-size or give the container more memory)"
        elif self.exit_code in _SIGNALS:
            how += f" (killed by {_SIGNALS[self.exit_code]})"
        cmd = " ".join(self.argv) if self.argv else "its command"
        return f"{self.image}: `{cmd}` {how}"

    def check(self) -> ContainerOutcome:
        """Return self when the command succeeded, else raise a one-line HarnessError."""
        if not self.ok:
            last = next((line for line in reversed(self.log_tail) if line.strip()), "")
            raise HarnessError(self.describe() + (f"; last line: {last.strip()}" if last else ""))
        return self


def image_for(model: str, *, tag: str | None = None, name: str | None = None) -> str:
    """`harness-<model>:<tag>`; tag from the argument, else $HARNESS_IMAGE_TAG, else the harness version.

    `name` replaces `harness-<model>` (a model card's `image` field), keeping the same tag rule.
    """
    if not re.fullmatch(r"[a-z0-9][a-z0-9_.-]*", model):
        raise HarnessError(f"'{model}' cannot name an image: use lower-case letters, digits, '.', '_' or '-'")
    tag = tag or os.environ.get(TAG_ENV) or __version__
    return f"{name or IMAGE_PREFIX + model}:{tag}"


def standard_volumes(
    *,
    results: str | os.PathLike,
    checkpoints: str | os.PathLike,
    cache: str | os.PathLike | None = None,
    hf_cache: str | os.PathLike | None = None,
) -> dict[str, str]:
    """Host folders -> the images' /data paths, for `run_in_image(volumes=...)`.

    Leave `cache` / `hf_cache` out to use fresh per-container folders (twins and downloads are then
    rebuilt or fetched again in every container).
    """
    volumes = {os.fspath(results): CONTAINER_RESULTS, os.fspath(checkpoints): CONTAINER_CHECKPOINTS}
    if cache is not None:
        volumes[os.fspath(cache)] = CONTAINER_CACHE
    if hf_cache is not None:
        volumes[os.fspath(hf_cache)] = CONTAINER_HF_CACHE
    return volumes


def host_gpu_ids() -> list[str]:
    """Indices of this host's NVIDIA GPUs, from the driver's files (no nvidia-smi, no torch)."""
    gpus = Path("/proc/driver/nvidia/gpus")
    try:
        count = sum(1 for _ in gpus.iterdir()) if gpus.is_dir() else 0
    except OSError:
        count = 0
    return [str(i) for i in range(count)]


def host_has_nvidia_gpu() -> bool:
    """True when this machine has an NVIDIA driver with at least one GPU.

    Looks at the driver's files rather than running nvidia-smi. It describes this host, which is
    the engine's host unless DOCKER_HOST points elsewhere: pass `gpu=` explicitly then.
    """
    gpus = Path("/proc/driver/nvidia/gpus")
    try:
        if gpus.is_dir() and any(gpus.iterdir()):
            return True
    except OSError:
        pass
    return Path("/dev/nvidia0").exists()


def _build_hint(image: str) -> str:
    repo = image.rsplit(":", 1)[0]
    if repo.startswith(IMAGE_PREFIX):  # compose's generic `bench` service builds the image HARNESS_MODEL_IMAGE names
        build = f"HARNESS_MODEL_IMAGE={repo[len(IMAGE_PREFIX):]} docker compose"
        return (
            f"build it with `{build} build bench` "
            f"(CPU only: `{build} -f compose.cpu.yaml build bench`)"
        )
    return "build or pull it first"


def _first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "explanation", None) or exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


class _Masker:
    """Replaces secret values (HF_TOKEN) in text handed back to callers."""

    def __init__(self, secrets: Iterable[str]):
        self._secrets = tuple(secrets)

    def __call__(self, text: str) -> str:
        from harness.runlog import redact  # the one masking rule (also the host's own env secrets)

        return redact(text, self._secrets)


class _LineSplitter:
    """Turns a byte stream into lines; a carriage return (progress bars) keeps only its last part."""

    def __init__(self) -> None:
        self._buf = ""

    def feed(self, chunk: bytes | str) -> list[str]:
        text = chunk.decode("utf-8", errors="replace") if isinstance(chunk, bytes) else chunk
        self._buf += text
        *lines, self._buf = self._buf.split("\n")
        return [self._last_frame(line) for line in lines]

    def flush(self) -> list[str]:
        rest, self._buf = self._buf, ""
        return [self._last_frame(rest)] if rest else []

    @staticmethod
    def _last_frame(line: str) -> str:
        frames = [f for f in line.rstrip("\r").split("\r") if f]
        return frames[-1] if frames else ""


def _image_facts(image: str, found) -> dict[str, str]:
    """What the run's manifest records of the image (harness/manifest.py): the tag asked for, the id,
    and the registry digest when the image came from (or went to) a registry. Only known here, after
    the build, so the runner passes them in rather than the Dockerfile."""
    digests = (getattr(found, "attrs", None) or {}).get("RepoDigests") or []
    repo = image.rsplit(":", 1)[0]
    digest = next((d for d in digests if d.split("@", 1)[0] == repo), digests[0] if digests else "")
    facts = {"HARNESS_IMAGE": image, "HARNESS_IMAGE_ID": str(getattr(found, "id", "") or "")}
    if digest:
        facts["HARNESS_IMAGE_DIGEST"] = digest
    return {key: value for key, value in facts.items() if value}


def _client() -> DockerClient:
    try:
        client = from_env()
        client.ping()
    except Exception as exc:  # any failure here means: no usable engine
        raise HarnessError(
            f"cannot reach the Docker engine ({_first_line(exc)}): start it, check DOCKER_HOST, or use --runner local"
        ) from None
    return client


def _mounts(volumes: Mapping[str | os.PathLike, str]) -> dict[str, dict[str, str]]:
    out: dict[str, dict[str, str]] = {}
    for host, target in volumes.items():
        host_str = os.fspath(host)
        if os.sep in host_str or host_str.startswith("."):  # a path: bind-mount it, creating it first
            path = Path(host_str).expanduser().resolve()
            path.mkdir(parents=True, exist_ok=True)
            host_str = str(path)
        mode = "rw"
        if target.endswith(":ro"):
            target, mode = target[:-3], "ro"
        out[host_str] = {"bind": target, "mode": mode}
    return out


def run_in_image(
    image: str,
    argv: Sequence[str],
    *,
    volumes: Mapping[str | os.PathLike, str] | None = None,
    env: Mapping[str, str] | None = None,
    gpu: bool | None = None,
    gpu_ids: Sequence[str] | None = None,
    on_log: Callable[[str], None] | None = None,
    user: str | None = None,
    network: str = "host",
    shm_size: str = "2g",
    mem_limit: str | None = None,
    tail_lines: int = LOG_TAIL_LINES,
) -> ContainerOutcome:
    """Run `argv` (arguments to the image's `harness` entrypoint) in `image`; stream its log lines.

    volumes: host path (or named volume) -> container path; append ':ro' to the container path
        for a read-only mount. Missing host folders are created.
    env: container environment. HF_TOKEN and HF_HUB_OFFLINE are added from the host environment
        when set there; HF_TOKEN's value never reaches on_log, the log tail or an error message.
    gpu: request all NVIDIA GPUs; None means "when this host has one".
    gpu_ids: request these GPUs only (e.g. ["1"]: one container per GPU); implies gpu.
    user: "uid:gid" to run as; default: the invoking user's, so that files written to bind
        mounts belong to them (the images work under any uid, see docker/base/Dockerfile).
    mem_limit: a memory cap such as "16g" (a run above it is OOM-killed: exit 137, oom_killed).
    The container is removed afterwards (with its anonymous volumes), also on Ctrl-C.
    """
    environment = dict(env or {})
    for key in PASSTHROUGH_SECRETS + PASSTHROUGH_SETTINGS:
        if key not in environment and os.environ.get(key):
            environment[key] = os.environ[key]
    mask = _Masker(environment.get(key, "") for key in PASSTHROUGH_SECRETS)
    emit = on_log or (lambda line: None)
    if gpu_ids:
        gpu = True
    if gpu is None:
        gpu = host_has_nvidia_gpu()
    if user is None and hasattr(os, "getuid"):
        user = f"{os.getuid()}:{os.getgid()}"

    client = _client()
    try:
        found = client.images.get(image)
    except ImageNotFound:
        raise HarnessError(f"image {image} not found: {_build_hint(image)}") from None
    except APIError as exc:
        raise HarnessError(f"docker: cannot inspect image {image}: {mask(_first_line(exc))}") from None
    for key, value in _image_facts(image, found).items():
        environment.setdefault(key, value)

    create_kwargs = dict(
        command=list(argv),
        environment=environment,
        volumes=_mounts(volumes or {}),
        network_mode=network,
        user=user,
        init=True,
        shm_size=shm_size,
        labels={"org.harness.runner": "docker"},
        detach=True,
    )
    if mem_limit:
        create_kwargs["mem_limit"] = mem_limit
    if gpu:
        create_kwargs["device_requests"] = [
            DeviceRequest(device_ids=list(gpu_ids), capabilities=[["gpu"]]) if gpu_ids
            else DeviceRequest(count=-1, capabilities=[["gpu"]])
        ]

    tail: deque[str] = deque(maxlen=max(tail_lines, 1))
    container = None
    try:
        try:
            container = client.containers.create(image, **create_kwargs)
            container.start()
        except APIError as exc:
            reason = mask(_first_line(exc))
            if gpu and "device driver" in reason:
                raise HarnessError(
                    f"docker cannot give {image} a GPU ({reason}): install the NVIDIA "
                    "Container Toolkit, or run without a GPU"
                ) from None
            raise HarnessError(f"docker could not start {image}: {reason}") from None

        splitter = _LineSplitter()
        for chunk in container.logs(stream=True, follow=True, stdout=True, stderr=True):
            for line in splitter.feed(chunk):
                line = mask(line)
                tail.append(line)
                emit(line)
        for line in splitter.flush():
            line = mask(line)
            tail.append(line)
            emit(line)

        status = container.wait()
        container.reload()
        state = container.attrs.get("State", {})
        return ContainerOutcome(
            exit_code=int(status.get("StatusCode", state.get("ExitCode", -1))),
            log_tail=list(tail),
            image=image,
            container_id=container.id,
            oom_killed=bool(state.get("OOMKilled", False)),
            argv=list(argv),
        )
    except (DockerException, requests.RequestException) as exc:  # the engine failed mid-run
        raise HarnessError(f"docker: {image}: {mask(_first_line(exc))}") from None
    finally:
        if container is not None:
            try:
                container.remove(force=True, v=True)
            except Exception:  # already gone, or the engine went away
                pass
