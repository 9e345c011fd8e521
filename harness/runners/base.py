"""The runner interface: take planned specs, run each exactly as planned, hand back typed outcomes.

A runner decides *where* a spec runs (this process, the model's container, a cluster node); it never
changes *what* runs. Every runner ends in the same worker, `harness.execute.execute` (the CLI's
`harness execute SPEC`), which reads the spec and nothing else. Skip-if-finished and failure
accounting live once, in the orchestrator; a runner only reports how each submitted spec ended.

    class MyRunner(Runner):
        name = "mine"
        def run_one(self, job: Job) -> Outcome: ...      # blocking; may run in several threads
    RUNNERS.register("mine", "mypackage.runner:MyRunner")
"""

from __future__ import annotations

import os
import traceback
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path

from harness.errors import HarnessError
from harness.plugins import Registry

__all__ = ["FAILED", "FINISHED", "RUNNERS", "SKIPPED", "Job", "JobGraph", "Outcome", "Runner", "check_output",
           "get_runner"]

FINISHED, SKIPPED, FAILED = "finished", "skipped", "failed"
DEBUG_ENV = "HARNESS_DEBUG"  # set by `harness --debug`: runners re-raise what they would report


@dataclass(frozen=True)
class Job:
    """One spec and the folder its outputs go to (spec.json is already written there)."""

    spec: object  # RunSpec or FinetuneSpec
    folder: Path
    checkpoints: Path  # where fine-tunes live (a fine-tuned run reads its adapter from there)
    cache: Path  # twins and generated data

    @property
    def kind(self) -> str:
        return self.spec.kind  # "finetune" or "run"

    @property
    def id(self) -> str:
        return self.spec.adapter_id if self.kind == "finetune" else self.spec.run_id


@dataclass(frozen=True)
class Outcome:
    """How one job ended: finished (its record is in the folder), skipped (why), or failed (why)."""

    job_id: str
    kind: str
    status: str
    reason: str = ""
    folder: Path | None = None
    exit_code: int | None = None
    log_tail: tuple[str, ...] = field(default_factory=tuple)

    @property
    def ok(self) -> bool:
        return self.status == FINISHED

    def line(self) -> str:
        """One line for the terminal."""
        if self.status == FINISHED:
            return f"{self.job_id}: finished"
        return f"{self.job_id}: {self.status}: {self.reason}"


def check_output(job: Job, exit_code: int | None = None, log_tail: tuple[str, ...] = ()) -> Outcome | None:
    """A failed Outcome when the job's record is missing or belongs to another spec, else None.

    Whatever ran the job (a thread, a container, a cluster node), this is how the orchestrator knows it
    ran exactly the planned spec: the record's config hash must be the planned one.
    """
    from harness.store import output_mismatch

    try:
        problem = output_mismatch(job.folder, job.spec)
    except HarnessError as exc:  # unreadable record
        problem = str(exc)
    if problem is None:
        return None
    return Outcome(job.id, job.kind, FAILED, f"{problem} after the job ended (the worker did not finish the "
                   "planned spec)", job.folder, exit_code, log_tail)


class JobGraph:
    """The plan's graph over one submission: a run that needs a fine-tune of the same submission waits
    for it, and starts as soon as it finished (not after every fine-tune); if it did not, the run is
    skipped with the reason. Every runner's `submit` schedules through this, so they agree on it."""

    def __init__(self, jobs: Iterable[Job]):
        jobs = list(jobs)
        ids = {job.id for job in jobs if job.kind == "finetune"}
        self.ready: deque[Job] = deque()
        self.waiting: dict[str, list[Job]] = {}
        for job in jobs:
            needs = getattr(job.spec, "needs", None) if job.kind == "run" else None
            if needs in ids:
                self.waiting.setdefault(needs, []).append(job)
            else:
                self.ready.append(job)

    def take(self) -> list[Job]:
        """The jobs that may start now (each is handed out once)."""
        out = list(self.ready)
        self.ready.clear()
        return out

    def ended(self, outcome: Outcome) -> list[Outcome]:
        """Release the jobs waiting for `outcome`'s fine-tune; the skipped outcomes when it did not finish."""
        released = self.waiting.pop(outcome.job_id, []) if outcome.kind == "finetune" else []
        if outcome.ok:
            self.ready.extend(released)
            return []
        return [Outcome(job.id, job.kind, SKIPPED, f"its fine-tune {outcome.job_id} did not finish", job.folder)
                for job in released]


class Runner:
    """Base runner: `submit` runs `run_one` over the jobs on `slots()` threads and yields as they end,
    starting each run that needs a fine-tune of the same submission when that fine-tune ends (`JobGraph`).
    """

    name = "base"

    def slots(self) -> int:
        """How many jobs may run at once (one per GPU for a container runner; 1 in process)."""
        return 1

    def run_one(self, job: Job) -> Outcome:
        raise NotImplementedError

    def _safe(self, job: Job) -> Outcome:
        try:
            return self.run_one(job)
        except HarnessError as exc:
            return Outcome(job.id, job.kind, FAILED, str(exc), job.folder)
        except Exception as exc:  # a bug in one model's code must not end the other jobs (--debug: raise)
            if os.environ.get(DEBUG_ENV):
                raise
            return _unexpected(job, exc)

    def submit(self, jobs: Iterable[Job]) -> Iterator[Outcome]:
        graph = JobGraph(jobs)
        if self.slots() <= 1:  # in this thread, in plan order (a released run queues behind the others)
            while graph.ready:
                outcome = self._safe(graph.ready.popleft())
                yield outcome
                yield from graph.ended(outcome)
            return
        with ThreadPoolExecutor(max_workers=self.slots(), thread_name_prefix=f"{self.name}-runner") as pool:
            running = {pool.submit(self._safe, job) for job in graph.take()}
            while running:
                done, running = wait(running, return_when=FIRST_COMPLETED)
                for future in done:
                    outcome = future.result()
                    yield outcome
                    yield from graph.ended(outcome)
                running |= {pool.submit(self._safe, job) for job in graph.take()}


def _unexpected(job: Job, exc: Exception) -> Outcome:
    """A failed outcome for an exception nobody turned into a HarnessError; its traceback goes to the job's log."""
    text = "".join(traceback.format_exception(exc))
    if job.folder is not None and job.folder.is_dir():
        with open(job.folder / "log.txt", "a", encoding="utf-8") as fh:
            fh.write(text)
    message = " ".join(str(exc).split()) or type(exc).__name__
    where = [line.strip() for line in text.splitlines() if line.strip().startswith("File ")][-1:]
    return Outcome(job.id, job.kind, FAILED, f"{type(exc).__name__}: {message} (traceback in "
                   f"{job.folder / 'log.txt'}; rerun with --debug to raise it)", job.folder, log_tail=tuple(where))


RUNNERS = Registry("runner")
RUNNERS.register("local", "harness.runners.local:LocalRunner")
RUNNERS.register("docker", "harness.runners.docker_runner:DockerRunner")
RUNNERS.register("ray", "harness.runners.ray_runner:RayRunner")
RUNNERS.register("venv", "harness.runners.venv:VenvRunner")  # a backend's own Python (vLLM)


def get_runner(name: str, **options) -> Runner:
    return RUNNERS.get(name)(**options)
