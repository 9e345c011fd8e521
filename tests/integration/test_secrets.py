"""HF_TOKEN never reaches a produced file or the terminal (issue 11, part 7).

A planted token is in the environment while one model goes through the smoke pipeline via the CLI
(fine-tune, bench, leaderboard) in process and once more as a subprocess (so the worker's stderr and log
files are covered); then every file under the results, checkpoints, leaderboard and cache folders and all
captured output are searched for it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness.cli import main

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
TOKEN = "hf_PLANTEDtoken1234567890abcdefXYZ"


def _hits(root: Path) -> list[str]:
    return [str(p) for p in root.rglob("*") if p.is_file() and TOKEN.encode() in p.read_bytes()]


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    root = tmp_path_factory.mktemp("secrets")
    env = {"HF_TOKEN": TOKEN, "HARNESS_CACHE_DIR": str(root / "cache"), "HARNESS_RESULTS_DIR": str(root / "results"),
           "HARNESS_CHECKPOINTS_DIR": str(root / "checkpoints"), "HARNESS_CONFIG_DIR": str(REPO)}
    mp = pytest.MonkeyPatch()
    for key, value in env.items():
        mp.setenv(key, value)
    for key in ("HARNESS_PRESET", "HARNESS_VERBOSE", "HARNESS_THREADS"):
        mp.delenv(key, raising=False)
    yield root
    mp.undo()


def test_the_token_is_in_no_file_and_no_output(planted, capfd):
    root = planted
    board = str(root / "board" / "LEADERBOARD.md")
    small = ["--preset", "smoke", "--set", "finetune.max_steps=2"]
    assert main(["finetune", "smolvlm", *small]) == 0
    assert main(["bench", "--model", "smolvlm", "--limit", "4", "--leaderboard", board, *small]) == 0
    assert main(["leaderboard", "--results", str(root / "results"), "--leaderboard", board]) == 0
    # A refused command whose message quotes the token (here a path containing it) prints it masked.
    assert main(["bench", "--model", "smolvlm", "--preset", "smoke", "--dataset", f"./{TOKEN}"]) == 2
    sub = subprocess.run([sys.executable, "-m", "harness.cli", "bench", "--model", "smolvlm", "--variant", "base",
                          "--limit", "4", "--force", "--leaderboard", board, *small],
                         cwd=REPO, env=dict(os.environ), capture_output=True, text=True, timeout=600)
    assert sub.returncode == 0, sub.stderr
    captured = capfd.readouterr()
    output = captured.out + captured.err + sub.stdout + sub.stderr
    assert "./***: no such directory" in output  # the refusal was printed, masked
    assert TOKEN not in output
    logs = list(root.rglob("log.txt")) + list(root.rglob("session-*.txt"))
    assert len(logs) >= 4 and (root / "checkpoints").is_dir() and list(root.rglob("result.json"))
    assert _hits(root) == []
