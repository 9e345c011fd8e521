"""Run specs in this process, through the same worker as every other runner (`harness.execute`).

Model code (torch) is imported by the worker, never by the planner. Before anything loads, each spec's
pinned environment is checked against this interpreter's packages: a model whose pins this process
cannot satisfy (Moondream 2024 needs transformers < 4.49, the others 5.x) is skipped with one line
pointing to a runner that gives it its own environment.
"""

from __future__ import annotations

from harness.doctor import check_card
from harness.runners.base import FINISHED, SKIPPED, Job, Outcome, Runner, check_output

__all__ = ["LocalRunner"]


class LocalRunner(Runner):
    name = "local"

    def __init__(self, force: bool = False, **_):
        self.force = force

    def run_one(self, job: Job) -> Outcome:
        from harness.execute import execute

        problems = check_card(job.spec.model_facts)
        if problems:
            backend = getattr(job.spec, "backend", "transformers")
            where = ("in the backend's own environment with --runner venv (scripts/vllm-env.sh makes it) or "
                     "its image with --runner docker" if backend != "transformers"
                     else "in its own image with --runner docker")
            return Outcome(job.id, job.kind, SKIPPED,
                           f"this Python environment does not match the model's pins ({'; '.join(problems)}); "
                           f"run it {where}", job.folder)
        execute(job.spec, job.folder, checkpoints=job.checkpoints, cache=job.cache, force=self.force)
        return check_output(job) or Outcome(job.id, job.kind, FINISHED, folder=job.folder)
