"""Shards split a run by a stable hash of the sample id; the plan's graph starts a run when its fine-tune ends."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import threading
from pathlib import Path
from types import SimpleNamespace

import pytest

from harness.errors import HarnessError
from harness.runners.base import FAILED, FINISHED, SKIPPED, Job, Outcome, Runner
from harness.shards import Shard, ShardStore, shard_of


def test_shard_of_is_sha1_of_the_id_and_stable_across_processes():
    ids = [f"chart-{i}" for i in range(50)]
    here = [shard_of(i, 3) for i in ids]
    assert here == [int(hashlib.sha1(i.encode()).hexdigest()[:16], 16) % 3 for i in ids]
    code = f"from harness.shards import shard_of; print([shard_of(i, 3) for i in {ids!r}])"
    for seed in ("1", "2"):  # Python's hash() would change with the seed
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                             env={"PYTHONHASHSEED": seed, "PYTHONPATH": str(Path(__file__).resolve().parents[2])})
        assert out.stdout.strip() == str(here)


def test_every_id_is_in_exactly_one_shard():
    ids = [f"s{i}" for i in range(200)]
    shards = [Shard(i, 4) for i in range(4)]
    owners = [[s.index for s in shards if s.keeps(i)] for i in ids]
    assert all(len(o) == 1 for o in owners)
    assert all(20 < sum(o == [k] for o in owners) < 80 for k in range(4))


@pytest.mark.parametrize("record", [{"index": 2, "of": 2}, {"index": -1, "of": 2}, {"index": 0, "of": 0},
                                    {"index": 0}, {"index": 0, "of": 2, "x": 1}])
def test_bad_shard_records_are_one_line(record):
    with pytest.raises(HarnessError, match="shard"):
        Shard.from_dict(record, where="job payload: shard")


class _ListStore:
    def __init__(self):
        self.rows = []

    def done_samples(self):
        return [dict(r) for r in self.rows]

    def append_samples(self, rows):
        self.rows.extend(dict(r) for r in rows)


def test_shard_stores_keep_batch_indices_unique_and_see_only_their_rows():
    shared = _ListStore()
    stores = [ShardStore(shared, Shard(i, 2)) for i in range(2)]
    ids = [f"s{i}" for i in range(12)]
    for store in stores:
        mine = [i for i in ids if store.shard.keeps(i)]
        for b in range(2):  # local batches 0 and 1 of every shard
            store.append_samples([{"id": i, "batch_index": b} for i in mine[b::2]])
    stored = {(r["batch_index"]) for r in shared.rows}
    assert len(stored) == 4  # 2 shards x 2 batches, no collision
    for store in stores:
        seen = store.done_samples()
        assert {r["id"] for r in seen} == {i for i in ids if store.shard.keeps(i)}
        assert {r["batch_index"] for r in seen} == {0, 1}  # the shard resumes after its own last batch
    assert not stores[0].is_finished()


def _job(kind, job_id, needs=None):
    spec = SimpleNamespace(kind=kind, adapter_id=job_id, run_id=job_id, needs=needs)
    return Job(spec, Path("/nonexistent") / job_id, Path("/ck"), Path("/cache"))


class _Runner(Runner):
    """Two slots; fine-tune ft-slow ends only after run r-fast (which needs ft-fast) has started."""

    def __init__(self, fail=()):
        self.started, self.events, self.fail = [], [], set(fail)
        self.fast_run_started = threading.Event()

    def slots(self):
        return 2

    def run_one(self, job):
        self.started.append(job.id)
        self.events.append(("start", job.id))
        if job.id == "r-fast":
            self.fast_run_started.set()
        if job.id == "ft-slow":
            assert self.fast_run_started.wait(10), "the run waited for every fine-tune"
        status = FAILED if job.id in self.fail else FINISHED
        self.events.append(("end", job.id))
        return Outcome(job.id, job.kind, status, "boom" if status == FAILED else "")


def test_a_run_starts_when_its_own_fine_tune_ends():
    jobs = [_job("finetune", "ft-slow"), _job("finetune", "ft-fast"), _job("run", "r-slow", "ft-slow"),
            _job("run", "r-fast", "ft-fast"), _job("run", "r-base")]
    runner = _Runner()
    outcomes = {o.job_id: o for o in runner.submit(jobs)}
    assert set(outcomes) == {j.id for j in jobs} and all(o.ok for o in outcomes.values())
    events = runner.events
    assert events.index(("start", "r-fast")) > events.index(("end", "ft-fast"))
    assert events.index(("start", "r-slow")) > events.index(("end", "ft-slow"))


def test_a_run_whose_fine_tune_failed_is_skipped_with_the_reason():
    jobs = [_job("finetune", "ft-fast"), _job("run", "r-fast", "ft-fast"), _job("run", "r-base")]
    runner = _Runner(fail={"ft-fast"})
    outcomes = {o.job_id: o for o in runner.submit(jobs)}
    assert outcomes["r-fast"].status == SKIPPED and "ft-fast did not finish" in outcomes["r-fast"].reason
    assert "r-fast" not in runner.started and outcomes["r-base"].ok
