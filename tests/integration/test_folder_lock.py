"""One writer per run / fine-tune folder (issue 11 part 3): the worker locks the folder for the whole job.

Two identical benches into one results folder used to both append (128 sample lines for 64 samples,
and the result accepted). The race is made certain, not hoped for: the first bench is held inside
its first batch write (with the folder locked) until the second has come and gone.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness.errors import HarnessError
from harness.lock import LOCK_NAME, folder_lock, lock_holder
from tests.conftest import REPO

BENCH = ["bench", "--model", "qwen2vl", "--variant", "base", "--preset", "smoke", "--limit", "16",
         "--batch-size", "2", "--no-leaderboard"]

# The first bench, held at its first samples.jsonl append until GATE/go exists (its folder is locked then).
HELD_BENCH = """
import os, sys, time
from pathlib import Path
from harness.store import RunStore
gate = Path(os.environ["LOCK_TEST_GATE"])
append = RunStore.append_samples
def held(self, rows):
    if not (gate / "go").exists():
        (gate / "waiting").write_text(str(self.dir))
        deadline = time.monotonic() + 300
        while not (gate / "go").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
    append(self, rows)
RunStore.append_samples = held
from harness.cli import main
sys.exit(main(sys.argv[1:]))
"""


def _env(harness_cache, root: Path, **extra) -> dict:
    return {**os.environ, "HARNESS_CACHE_DIR": str(harness_cache), "HARNESS_CONFIG_DIR": str(REPO),
            "HARNESS_RESULTS_DIR": str(root / "results"), "HARNESS_CHECKPOINTS_DIR": str(root / "checkpoints"),
            **extra}


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def _plant_stale(folder: Path, pid: int) -> None:
    (folder / LOCK_NAME).write_text(json.dumps({"pid": pid, "host": socket.gethostname(),
                                                "since": "2026-01-01T00:00:00.000Z", "what": "bench run"}))


@pytest.mark.integration
def test_two_identical_benches_one_runs_the_other_is_refused(harness_cache, tmp_path):
    gate = tmp_path / "gate"
    gate.mkdir()
    env = _env(harness_cache, tmp_path, LOCK_TEST_GATE=str(gate))
    first = subprocess.Popen([sys.executable, "-c", HELD_BENCH, *BENCH], cwd=REPO, env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 300  # the first run may build the twin and the data first
        while not (gate / "waiting").exists():
            assert first.poll() is None, f"first bench ended early: {first.communicate()[1][-2000:]}"
            assert time.monotonic() < deadline, "first bench never reached its first batch"
            time.sleep(0.1)
        folder = Path((gate / "waiting").read_text())
        holder = lock_holder(folder)  # checked below, after what matters most: the samples
        second = subprocess.run([sys.executable, "-m", "harness.cli", *BENCH], cwd=REPO, env=env,
                                capture_output=True, text=True, timeout=300)
    finally:
        (gate / "go").write_text("go")
        out, err = first.communicate(timeout=300)
    assert first.returncode == 0, err[-2000:]
    ids = [json.loads(line)["id"] for line in (folder / "samples.jsonl").read_text().splitlines()]
    assert len(ids) == 16 and len(set(ids)) == 16, f"{len(ids)} sample lines for {len(set(ids))} samples"
    assert json.loads((folder / "result.json").read_text())["spec"]["limit"] == 16
    assert not (folder / LOCK_NAME).exists(), "the lock file outlived its run"

    assert holder and holder["pid"] == first.pid and holder["host"] == socket.gethostname(), holder
    assert second.returncode != 0, second.stderr[-2000:]
    named = [line for line in second.stderr.splitlines() if f"pid {first.pid} on host" in line]
    assert len(named) == 1, second.stderr
    assert str(folder) in named[0] and "in use by another writer" in named[0] and "bench run" in named[0]
    assert "Traceback" not in second.stderr

    # A killed worker's lock file (dead pid, nobody holding it) is taken over by the next worker.
    dead = _dead_pid()
    _plant_stale(folder, dead)
    proc = subprocess.run([sys.executable, "-m", "harness.cli", "execute", str(folder)], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    taken = [line for line in proc.stderr.splitlines() if f"pid {dead} on host" in line]
    assert len(taken) == 1 and "taking over the lock" in taken[0], proc.stderr
    assert "already finished" in proc.stderr and not (folder / LOCK_NAME).exists()

    # A lock file in a run folder is not a result: the leaderboard renders around it.
    from harness.cli import main

    _plant_stale(folder, dead)
    page = tmp_path / "LEADERBOARD.md"
    assert main(["leaderboard", "--results", str(folder.parent), "--leaderboard", str(page),
                 "--resamples", "10"]) == 0
    assert "qwen2vl" in page.read_text()


def test_stale_lock_is_taken_over_and_removed(tmp_path, capsys):
    dead = _dead_pid()
    _plant_stale(tmp_path, dead)
    with folder_lock(tmp_path, "bench run"):
        assert lock_holder(tmp_path)["pid"] == os.getpid()
        with pytest.raises(HarnessError) as refused:  # flock is per open file: the same process is refused too
            with folder_lock(tmp_path, "bench run"):
                pass
        assert f"pid {os.getpid()} on host {socket.gethostname()}" in str(refused.value)
        assert "\n" not in str(refused.value)
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and f"pid {dead}" in err[0] and "taking over" in err[0], err
    assert not (tmp_path / LOCK_NAME).exists()
    with folder_lock(tmp_path, "bench run"):  # a clean folder: no takeover line
        pass
    assert capsys.readouterr().err == ""


def test_the_lock_is_released_when_the_job_fails(tmp_path):
    with pytest.raises(RuntimeError):
        with folder_lock(tmp_path, "bench run"):
            raise RuntimeError("the job failed")
    assert not (tmp_path / LOCK_NAME).exists()
    with folder_lock(tmp_path, "bench run"):
        pass


def test_finetune_folder_is_locked_for_the_whole_finetune(harness_env, monkeypatch, capsys):
    import harness.execute as worker
    from harness.orchestrate import prepare_job
    from harness.plan import resolve_paths
    from tests.helpers import finetune_sets, plan_ft

    spec = plan_ft("qwen2vl", preset="smoke", sets=finetune_sets(max_steps=1, limit=2))
    paths = resolve_paths(None)
    job = prepare_job(spec, paths)

    # Another writer holds the folder: the worker refuses before loading anything, in one line.
    with folder_lock(job.folder, "fine-tune"):
        with pytest.raises(HarnessError) as refused:
            worker.execute(spec, job.folder, checkpoints=paths.checkpoints, cache=paths.cache)
    message = str(refused.value)
    assert f"pid {os.getpid()} on host" in message and "(fine-tune)" in message and "\n" not in message
    assert not (job.folder / "training.json").exists() and not (job.folder / "adapter").exists()

    # While the fine-tune runs the folder is locked by this worker; a stale lock is taken over first.
    seen = []
    monkeypatch.setattr(worker, "_execute_finetune",
                        lambda spec, folder, cache, force: seen.append(lock_holder(folder)) or {"ok": True})
    dead = _dead_pid()
    _plant_stale(job.folder, dead)
    capsys.readouterr()
    assert worker.execute(spec, job.folder, checkpoints=paths.checkpoints, cache=paths.cache) == {"ok": True}
    assert seen[0]["pid"] == os.getpid() and seen[0]["what"] == "fine-tune"
    assert f"pid {dead}" in capsys.readouterr().err
    assert not (job.folder / LOCK_NAME).exists()
