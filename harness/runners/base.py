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

from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

from harness.errors import HarnessError
from harness.plugins import Registry

__all__ = ["FAILED", "FINISHED", "RUNNERS", "SKIPPED", "Job", "Outcome", "Runner", "check_output", "get_runner"]

FINISHED, SKIPPED, FAILED = "finished", "skipped", "failed"


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


class Runner:
    """Base runner: `submit` runs `run_one` over the jobs on `slots()` threads and yields as they end."""

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

    def submit(self, jobs: Iterable[Job]) -> Iterator[Outcome]:
        jobs = list(jobs)
        if self.slots() <= 1 or len(jobs) <= 1:
            for job in jobs:
                yield self._safe(job)
            return
        with ThreadPoolExecutor(max_workers=self.slots(), thread_name_prefix=f"{self.name}-runner") as pool:
            futures = [pool.submit(self._safe, job) for job in jobs]
            for future in as_completed(futures):
                yield future.result()


RUNNERS = Registry("runner")
RUNNERS.register("local", "harness.runners.local:LocalRunner")
RUNNERS.register("docker", "harness.runners.docker_runner:DockerRunner")


def get_runner(name: str, **options) -> Runner:
    return RUNNERS.get(name)(**options)
