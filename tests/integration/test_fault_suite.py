"""The fault-injection suite (scripts/fault-suite.py, issue 11) on the qwen2vl twin, as CI runs it.

Every bench and fine-tune fault point is hit once (a real SIGKILL, a full disk, a CUDA OOM, a NaN loss)
at an occurrence drawn from the seed, and the rerun must end where an uninterrupted run ends.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.conftest import REPO


def test_fault_suite_recovers_from_every_fault(harness_cache, tmp_path):
    out = tmp_path / "faults.json"
    seed = os.environ.get("FAULT_SUITE_SEED", "0")
    proc = subprocess.run([sys.executable, str(REPO / "scripts" / "fault-suite.py"), "--seed", seed,
                           "--json", str(out), "--cache", str(harness_cache), "--work", str(tmp_path / "work")],
                          cwd=REPO, capture_output=True, text=True, timeout=1200)
    assert out.exists(), proc.stdout[-3000:] + proc.stderr[-3000:]
    report = json.loads(out.read_text())
    summary = report["summary"]
    failed = [s for s in report["scenarios"] if not s["recovered"]]
    assert not failed, json.dumps(failed, indent=1)[-4000:]
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert summary["runs_recovered"] == summary["faults_injected"] >= 30
    assert summary["samples_lost"] == 0 and summary["samples_duplicated"] == 0
    assert summary["bench_points"] >= 10 and summary["finetune_points"] >= 10
    kinds = summary["by_kind"]
    assert kinds["kill"] >= 20 and kinds["enospc"] >= 2 and kinds["oom"] >= 2 and kinds["nan"] >= 1
