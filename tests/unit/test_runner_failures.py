"""An exception nobody turned into a HarnessError fails its job, not the bench: the other jobs still run."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.runners.base import DEBUG_ENV, FAILED, FINISHED, Job, Outcome, Runner


class _Spec:
    def __init__(self, name: str):
        self.kind, self.run_id, self.needs = "run", name, None


class _Flaky(Runner):
    def run_one(self, job: Job) -> Outcome:
        if job.id == "bad":
            raise ValueError("index 7 out of range in a model's own code")
        return Outcome(job.id, job.kind, FINISHED, folder=job.folder)


def _jobs(tmp_path: Path) -> list[Job]:
    jobs = []
    for name in ("bad", "good"):
        (tmp_path / name).mkdir()
        jobs.append(Job(_Spec(name), tmp_path / name, tmp_path, tmp_path))
    return jobs


def test_an_unexpected_error_fails_one_job_and_the_others_run(tmp_path, monkeypatch):
    monkeypatch.delenv(DEBUG_ENV, raising=False)
    outcomes = {o.job_id: o for o in _Flaky().submit(_jobs(tmp_path))}
    assert outcomes["good"].status == FINISHED
    bad = outcomes["bad"]
    assert bad.status == FAILED and bad.reason.startswith("ValueError: index 7 out of range")
    assert "--debug" in bad.reason and str(tmp_path / "bad" / "log.txt") in bad.reason
    log = (tmp_path / "bad" / "log.txt").read_text()
    assert "Traceback" in log and "run_one" in log  # the traceback is kept, in the job's log
    assert bad.log_tail and bad.log_tail[0].startswith("File ")


def test_debug_raises_it(tmp_path, monkeypatch):
    monkeypatch.setenv(DEBUG_ENV, "1")
    with pytest.raises(ValueError, match="index 7"):
        list(_Flaky().submit(_jobs(tmp_path)))
