"""The Ray runner on a local two-node cluster (CPU only, one CPU per node, small object stores).

The smoke preset through `--runner ray --shards 2` must give, for every run, the rows and metrics the
local runner gives (same ids, predictions, per-sample scores); a worker SIGKILLed mid-run is retried
and the run still holds every sample exactly once.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness.cli import main
from tests.helpers import read_results, read_samples

ray = pytest.importorskip("ray")
from ray.cluster_utils import Cluster  # noqa: E402

pytestmark = [pytest.mark.integration, pytest.mark.ray]

REPO = Path(__file__).resolve().parents[2]
SMALL = ["--preset", "smoke", "--limit", "8", "--set", "finetune.max_steps=2", "--no-leaderboard"]
STORE = 80 * 1024 * 1024


@pytest.fixture(scope="module")
def cluster():
    """A head and one more node process on loopback, one CPU each; stopped (only these) at the end."""
    c = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "object_store_memory": STORE})
    c.add_node(num_cpus=1, object_store_memory=STORE)
    c.wait_for_nodes()
    yield c.address
    ray.shutdown()
    c.shutdown()


def _bench(root: Path, cache: Path, *args: str, env: dict | None = None) -> int:
    values = {"HARNESS_CACHE_DIR": str(cache), "HARNESS_RESULTS_DIR": str(root / "results"),
              "HARNESS_CHECKPOINTS_DIR": str(root / "checkpoints"), "HARNESS_CONFIG_DIR": str(REPO), **(env or {})}
    old = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        return main(["bench", *args])
    finally:
        for key, value in old.items():
            os.environ.pop(key, None) if value is None else os.environ.__setitem__(key, value)


def _rows(result: dict) -> dict:
    return {r["id"]: (r["prediction"], r["scores"]) for r in read_samples(result["_dir"])}


def test_sharded_ray_runs_equal_local_runs(cluster, harness_cache, tmp_path):
    # One torch thread, as each Ray task gets: the numbers must not depend on the runner.
    assert _bench(tmp_path / "local", harness_cache, "--all", *SMALL, env={"HARNESS_THREADS": "1"}) == 0
    assert _bench(tmp_path / "ray", harness_cache, "--all", *SMALL, "--runner", "ray", "--address", cluster,
                  "--shards", "2") == 0
    local, sharded = read_results(tmp_path / "local" / "results"), read_results(tmp_path / "ray" / "results")
    assert local and set(sharded) == set(local)
    for key, want in local.items():
        got = sharded[key]
        assert got["spec"]["config_hash"] == want["spec"]["config_hash"]  # the shard is not in the identity
        rows = read_samples(got["_dir"])
        assert len(rows) == len({r["id"] for r in rows}) == want["num_samples"]
        assert _rows(got) == _rows(want), key
        assert got["metrics"] == want["metrics"], key
        assert got["num_samples"] == want["num_samples"]
        shards = got["manifest"]["cluster"]["shards"]
        assert [s["index"] for s in shards] == [0, 1] and all(s["node_id"] and s["hostname"] for s in shards)
        assert got["manifest"]["cluster"]["ray_version"] == ray.__version__
        assert sum(s["samples"] for s in got["shards"]) == want["num_samples"]
        assert got["latency"]["how"].startswith("pooled over 2 shards, all on ")


def _worker_pids() -> list[int]:
    import psutil

    pids = []
    for proc in psutil.process_iter(["cmdline"]):
        line = " ".join(proc.info.get("cmdline") or [])
        if line.startswith("ray::_job_task"):
            pids.append(proc.pid)
    return pids


def test_killed_worker_is_retried_without_redoing_samples(cluster, harness_cache, tmp_path):
    env = {**os.environ, "HARNESS_CACHE_DIR": str(harness_cache), "HARNESS_RESULTS_DIR": str(tmp_path / "results"),
           "HARNESS_CHECKPOINTS_DIR": str(tmp_path / "checkpoints"), "HARNESS_CONFIG_DIR": str(REPO)}
    argv = [sys.executable, "-m", "harness.cli", "bench", "--model", "smolvlm", "--variant", "base", "--preset",
            "smoke", "--limit", "24", "--batch-size", "2", "--no-leaderboard", "--runner", "ray", "--address", cluster]
    driver = subprocess.Popen(argv, env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    killed = None
    deadline = time.monotonic() + 150
    while killed is None and time.monotonic() < deadline and driver.poll() is None:
        samples = list((tmp_path / "results").glob("*/samples.jsonl"))
        stored = len(samples[0].read_text().splitlines()) if samples else 0
        pids = _worker_pids()
        if 2 <= stored < 20 and pids:
            killed = pids[0]
            os.kill(killed, signal.SIGKILL)
        time.sleep(0.2)
    out, _ = driver.communicate(timeout=240)
    assert killed is not None, "no worker was killed mid-run:\n" + out[-2000:]
    assert driver.returncode == 0, out[-3000:]
    (result,) = read_results(tmp_path / "results").values()
    rows = read_samples(result["_dir"])
    assert len(rows) == 24 and len({r["id"] for r in rows}) == 24  # every sample exactly once
    assert result["num_samples"] == 24
    assert json.loads(Path(result["_dir"], "result.json").read_text())["resumed_samples"] >= 2
