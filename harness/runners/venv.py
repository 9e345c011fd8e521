"""`--runner venv`: the local runner, except that a spec whose backend has its own Python environment
runs there, as `PYTHON -m harness.cli execute FOLDER` (the same worker every runner ends in).

vLLM pins transformers < 5.20 while the harness's main environment runs 5.24, so a vLLM run cannot share
this interpreter; scripts/vllm-env.sh makes `.venv-vllm/`. Chosen over a container because CI has no
Docker engine, and over re-executing inside LocalRunner because "this process" is what `--runner local`
promises (its pins check and version-match reuse rule stay as they are). The worker writes the record;
`check_output` proves it ran the planned spec, exactly as for a container.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import harness
from harness.runners.base import FAILED, FINISHED, SKIPPED, Job, Outcome, check_output
from harness.runners.local import LocalRunner

__all__ = ["BACKEND_PYTHON_ENV", "VenvRunner", "backend_python"]

# Which interpreter runs a backend's specs: the variable, else .venv-<backend>/bin/python (cwd, then repo).
BACKEND_PYTHON_ENV = {"vllm": "HARNESS_VLLM_PYTHON"}

_CHECK_PINS = ("import json, sys; from harness.doctor import check_card; from harness.specs import ModelFacts; "
               "print(json.dumps(check_card(ModelFacts.from_dict(json.load(sys.stdin)))))")


def backend_python(backend: str) -> Path | None:
    """The interpreter for `backend`'s specs; None for the default backend (this process)."""
    if backend not in BACKEND_PYTHON_ENV:
        return None
    explicit = os.environ.get(BACKEND_PYTHON_ENV[backend])
    if explicit:
        return Path(explicit)
    relative = Path(f".venv-{backend}") / "bin" / "python"
    for root in (Path.cwd(), Path(harness.__file__).resolve().parents[1]):
        if (root / relative).exists():
            return (root / relative).absolute()  # not resolve(): a venv's python is a symlink to the base one
    return Path.cwd() / relative


class VenvRunner(LocalRunner):
    name = "venv"

    def run_one(self, job: Job) -> Outcome:
        backend = getattr(job.spec, "backend", "transformers")
        python = backend_python(backend)
        if python is None:
            return super().run_one(job)
        if not python.exists():
            return Outcome(job.id, job.kind, SKIPPED, f"{python}: no {backend} environment here; make it with "
                           f"scripts/{backend}-env.sh or set {BACKEND_PYTHON_ENV[backend]}", job.folder)
        problems = self._pins(python, job)
        if problems:
            return Outcome(job.id, job.kind, SKIPPED, f"{python} does not match the {backend} backend's pins "
                           f"({'; '.join(problems)}); rerun scripts/{backend}-env.sh", job.folder)
        argv = [str(python), "-m", "harness.cli", "execute", str(job.folder), "--checkpoints", str(job.checkpoints)]
        env = {**os.environ, "HARNESS_CACHE_DIR": str(job.cache)}
        code = subprocess.run(argv + (["--force"] if self.force else []), env=env).returncode
        if code != 0:
            return Outcome(job.id, job.kind, FAILED, f"`{' '.join(argv[:4])} ...` exited with {code}", job.folder,
                           code, _tail(Path(job.folder) / "log.txt"))
        return check_output(job, code) or Outcome(job.id, job.kind, FINISHED, folder=job.folder, exit_code=0)

    @staticmethod
    def _pins(python: Path, job: Job) -> list[str]:
        facts = job.spec.to_dict()["model_facts"]
        out = subprocess.run([str(python), "-c", _CHECK_PINS], input=json.dumps(facts), capture_output=True,
                             text=True, timeout=120)
        if out.returncode != 0:
            last = (out.stderr.strip().splitlines() or ["no output"])[-1]
            return [f"cannot run the harness there: {last}"]
        return json.loads(out.stdout)


def _tail(path: Path, lines: int = 12) -> tuple[str, ...]:
    try:
        return tuple(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ()
