"""Clean output (issue 11, part 8): a normal run prints the harness's own lines; third-party progress bars
and warnings go to the run's log.txt and the session log, and to the terminal only with --verbose."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
NOISE = re.compile(r"Loading weights|Saving the dataset|it/s|warning|deprecat", re.IGNORECASE)


def _bench(root: Path, *extra: str, variant: str = "base") -> subprocess.CompletedProcess:
    env = {**os.environ, "HARNESS_CACHE_DIR": str(root / "cache"), "HARNESS_RESULTS_DIR": str(root / "results"),
           "HARNESS_CHECKPOINTS_DIR": str(root / "checkpoints"), "HARNESS_CONFIG_DIR": str(REPO)}
    for key in ("HARNESS_PRESET", "HARNESS_VERBOSE", "HARNESS_THREADS"):
        env.pop(key, None)
    argv = [sys.executable, "-m", "harness.cli", "bench", "--model", "smolvlm", "--variant", variant, "--preset",
            "smoke", "--limit", "4", "--leaderboard", str(root / "board" / "LEADERBOARD.md"), *extra]
    return subprocess.run(argv, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def quiet_and_verbose(tmp_path_factory):
    """A fresh cache (so the twin is built and the data set saved: the noisiest run), then --verbose --force."""
    root = tmp_path_factory.mktemp("clean")
    return root, _bench(root), _bench(root, "--verbose", "--force")


def test_a_normal_run_prints_only_the_harness_lines(quiet_and_verbose):
    _, quiet, _ = quiet_and_verbose
    assert quiet.returncode == 0, quiet.stderr
    noisy = [line for line in quiet.stderr.splitlines() if NOISE.search(line)]
    assert not noisy, quiet.stderr
    assert "bench smolvlm/base bs8: 4/4 samples" in quiet.stderr and "runs: 1 finished" in quiet.stderr
    assert "| smolvlm | base" in quiet.stdout  # the results table stays on stdout


def test_third_party_lines_are_in_the_run_and_session_logs(quiet_and_verbose):
    root, _, _ = quiet_and_verbose
    (run_log,) = (root / "results").glob("smolvlm-base-*/log.txt")
    text = run_log.read_text()
    assert "Loading weights" in text and "Saving the dataset" in text
    assert "bench smolvlm/base bs8: 4/4 samples" in text  # the harness's own lines are copied in
    sessions = sorted((root / "results" / "logs").glob("session-*.txt"))
    assert sessions and "Loading weights" in sessions[0].read_text()
    assert "runs: 1 finished" in sessions[0].read_text()


def test_verbose_shows_them_on_the_terminal(quiet_and_verbose):
    _, _, loud = quiet_and_verbose
    assert loud.returncode == 0, loud.stderr
    assert "Loading weights" in loud.stderr
    assert "runs: 1 finished" in loud.stderr


def test_a_failure_is_printed_once(tmp_path):
    """A fine-tune that cannot run: one line for it, one for its skipped run, the summary; nothing about
    the leaderboard (it is not the cause)."""
    result = _bench(tmp_path, "--no-finetune", variant="finetuned")
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert [line for line in lines if "--no-finetune given" in line] == [lines[1]], result.stderr
    assert not [line for line in lines if "leaderboard" in line], result.stderr
    assert lines[-1] == "runs: 0 finished, 1 skipped (above), 1 FAILED (above)"
