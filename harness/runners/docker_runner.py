"""Run each spec in its model's pinned image: `harness execute /data/job` on the spec.json the host wrote.

The container never plans. The host writes spec.json into the job's folder, mounts that folder, the
checkpoints, a cache and the shared HF cache, and runs the worker; afterwards the record must carry the
planned config hash (`check_output`), or the job failed. On a host with several GPUs one container
runs per GPU at a time.
"""

from __future__ import annotations

import os
import queue
from pathlib import Path

from harness.plan import SYNTHETIC_PREFIX
from harness.progress import log
from harness.runners.base import FAILED, FINISHED, Job, Outcome, Runner, check_output

__all__ = ["HF_CACHE_VOLUME", "DockerRunner", "container_env", "container_invocation"]

# The named volume compose.yaml declares (`name: harness-hf-cache`), so `docker compose run` and
# `--runner docker` read the same downloads; HARNESS_HF_CACHE=/path binds a host folder instead.
HF_CACHE_VOLUME = "harness-hf-cache"
JOB_DIR = "/data/job"


def hf_cache_source() -> str:
    return os.environ.get("HARNESS_HF_CACHE") or HF_CACHE_VOLUME


def container_env() -> dict[str, str]:
    """Environment for the container beyond the image's: `--threads N` (HARNESS_THREADS on the host) as the
    worker's torch threads and the OpenMP/MKL pools, which read their variables only at start-up."""
    from harness.runlog import THREADS_ENV

    threads = os.environ.get(THREADS_ENV)
    return {key: threads for key in (THREADS_ENV, "OMP_NUM_THREADS", "MKL_NUM_THREADS")} if threads else {}


def container_invocation(job: Job, force: bool = False) -> tuple[str, list[str], dict[str, str]]:
    """(image, argv, volumes) that run `job` in its model's image; pure, so tests check it without an engine."""
    from harness.runners.docker import CONTAINER_CACHE, CONTAINER_CHECKPOINTS, CONTAINER_HF_CACHE, image_for

    spec = job.spec
    facts = spec.model_facts
    image = image_for(spec.model, name=facts.image or None)
    volumes = {
        str(Path(job.folder).resolve()): JOB_DIR,
        # A fine-tune writes only its own folder; a run reads its adapter from the checkpoints.
        str(Path(job.checkpoints).resolve()): CONTAINER_CHECKPOINTS + ":ro",
        # A cache per image: twins are saved by that image's own library versions.
        str((Path(job.cache) / f"container-{image.rsplit(':', 1)[0]}").resolve()): CONTAINER_CACHE,
        hf_cache_source(): CONTAINER_HF_CACHE,
    }
    dataset = spec.dataset
    if not dataset.startswith(SYNTHETIC_PREFIX) and Path(dataset).exists():
        # Mounted at the same absolute path: the spec's dataset string means the same files inside.
        volumes[str(Path(dataset).resolve())] = str(Path(dataset).resolve()) + ":ro"
    argv = ["execute", JOB_DIR] + (["--force"] if force else [])
    return image, argv, volumes


class DockerRunner(Runner):
    name = "docker"

    def __init__(self, force: bool = False, **_):
        from harness.runners.docker import host_gpu_ids

        self.force = force
        self._gpus = host_gpu_ids()
        self._free: queue.Queue[str] = queue.Queue()
        for gpu in self._gpus:
            self._free.put(gpu)

    def slots(self) -> int:
        return max(1, len(self._gpus))

    def run_one(self, job: Job) -> Outcome:
        from harness.runners.docker import run_in_image

        image, argv, volumes = container_invocation(job, self.force)
        gpu = self._free.get() if self._gpus else None
        try:
            log(f"{job.id}: running `harness {' '.join(argv)}` in {image}" + (f" on GPU {gpu}" if gpu else ""))
            outcome = run_in_image(image, argv, volumes=volumes, env=container_env(), gpu_ids=[gpu] if gpu else None,
                                   gpu=None if gpu else False,
                                   on_log=lambda line: log(f"  [{job.spec.model}] {line}"))
        finally:
            if gpu is not None:
                self._free.put(gpu)
        tail = ()  # every line was streamed to the terminal above (on_log): the error is printed once
        if not outcome.ok:
            return Outcome(job.id, job.kind, FAILED, outcome.describe(), job.folder, outcome.exit_code, tail)
        return check_output(job, outcome.exit_code, tail) or Outcome(job.id, job.kind, FINISHED, folder=job.folder)
