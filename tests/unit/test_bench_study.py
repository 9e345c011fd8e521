"""`harness bench --variant study`: models without a study checkpoint are skipped under --all and an error
when named; under the smoke preset nothing can run (published weights have no twin) and that is not a failure.
"""

from __future__ import annotations

import pytest

from harness.cli import main
from harness.registry import list_models
from harness.runners.base import FINISHED, RUNNERS, Outcome, Runner

NO_STUDY = sorted(c.name for c in list_models() if not c.study)
WITH_STUDY = sorted(c.name for c in list_models() if c.study)


class FakeRunner(Runner):
    """Reports every job finished without running it, and remembers the specs."""

    name = "fake"
    specs: list = []

    def __init__(self, **_):
        pass

    def run_one(self, job):
        FakeRunner.specs.append(job.spec)
        return Outcome(job.id, job.kind, FINISHED, folder=job.folder)


@pytest.fixture
def ran(monkeypatch):
    monkeypatch.setitem(RUNNERS._entries, "fake", FakeRunner)
    FakeRunner.specs = []
    return FakeRunner.specs


def test_the_registry_has_both_kinds():
    assert "moondream2025" in NO_STUDY and WITH_STUDY  # else the tests below test nothing


def test_all_study_real_run_skips_models_without_a_study_checkpoint(harness_env, capsys, ran, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", "hf_test")  # a gated card (gemma3) is otherwise skipped for the missing token
    assert main(["bench", "--all", "--variant", "study", "--batch-size", "1", "--no-leaderboard",
                 "--runner", "fake", "--allow-unpinned-code"]) == 0  # moondream's study checkpoint is at main
    err = capsys.readouterr().err
    assert sorted(s.model for s in ran) == WITH_STUDY
    assert all(s.variant == "study" and s.adapter_id for s in ran)
    skips = [line for line in err.splitlines() if "skipped" in line]
    assert len(skips) == len(NO_STUDY) and all("published no fine-tune" in line for line in skips)
    assert sorted(line.split(":")[0] for line in skips) == NO_STUDY


def test_naming_a_model_without_a_study_checkpoint_is_an_error(harness_env, capsys):
    assert main(["bench", "--model", "moondream2025", "--variant", "study", "--no-leaderboard"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["error: moondream2025: the original study published no fine-tune for this model"]


@pytest.mark.parametrize("leaderboard", [True, False])
def test_all_study_under_smoke_says_why_and_exits_cleanly(harness_env, capsys, leaderboard):
    argv = ["bench", "--all", "--variant", "study", "--preset", "smoke"] + ([] if leaderboard else ["--no-leaderboard"])
    assert main(argv) == 0
    err = capsys.readouterr().err
    assert "failed" not in err and "Traceback" not in err
    lines = err.splitlines()
    for name in WITH_STUDY:
        assert any(name in line and "cannot be twinned" in line for line in lines), (name, err)
    for name in NO_STUDY:
        assert any(name in line and "published no fine-tune" in line for line in lines), (name, err)
    assert not (harness_env / "results").exists()  # nothing ran, nothing written


def test_study_under_smoke_with_other_variants_still_runs_them(harness_env, capsys, ran):
    assert main(["bench", "--model", "moondream", "--variant", "base", "--variant", "study", "--preset", "smoke",
                 "--no-leaderboard", "--runner", "fake"]) == 0
    assert [s.variant for s in ran] == ["base"]
    assert "moondream: study variant skipped" in capsys.readouterr().err
