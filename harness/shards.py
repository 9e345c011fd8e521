"""Data-parallel shards of one run: a stable split of its samples by id, and the merge back into one result.

The shard is not part of the run's identity (its config hash): the N shards of a run write the rows a
single worker writes (same ids, predictions, scores) into the same run folder, and the driver builds
the one result.json from them. What crosses the boundary to a shard worker is the run's spec record
plus `{"index": i, "of": n}` (the job payload of harness/runners/ray_runner.py); the worker keeps the
samples with `shard_of(id, n) == i`, a hash of the id alone, so a rerun gets the same split.

Batch indices stay unique in the shared samples.jsonl: shard i stores its local batch b as b * n + i
(`ShardStore`), so the latency summary's per-batch grouping never mixes two shards' batches.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from harness.errors import HarnessError

__all__ = ["Shard", "ShardSplit", "ShardStore", "merge_result", "shard_of"]


def shard_of(sample_id: str, count: int) -> int:
    """The shard of a sample: sha1 of its id mod `count` (stable across runs, machines and Python versions)."""
    return int.from_bytes(hashlib.sha1(str(sample_id).encode()).digest()[:8], "big") % count


class Shard:
    """Shard `index` of `of`. `select` also remembers the whole split's id order, for the driver's merge."""

    def __init__(self, index: int, of: int, where: str = "shard"):
        if not (isinstance(of, int) and isinstance(index, int) and of >= 1 and 0 <= index < of):
            raise HarnessError(f"{where}: expected 0 <= index < of with of >= 1, got index={index!r} of={of!r}")
        self.index, self.of = index, of
        self.order: list[str] | None = None

    def keeps(self, sample_id: str) -> bool:
        return shard_of(sample_id, self.of) == self.index

    def select(self, data) -> ShardSplit:
        self.order = [example.id for example in data]
        return ShardSplit(data, self)

    def to_dict(self) -> dict:
        return {"index": self.index, "of": self.of}

    @classmethod
    def from_dict(cls, data, where: str = "shard") -> Shard:
        if not isinstance(data, dict) or set(data) != {"index", "of"}:
            raise HarnessError(f"{where}: expected {{'index': i, 'of': n}}, got {data!r}")
        return cls(data["index"], data["of"], where)

    def __repr__(self) -> str:
        return f"shard {self.index + 1}/{self.of}"


class ShardSplit(Sequence):
    """The examples of one shard, in the split's order; every other attribute (fingerprint, source,
    skipped rows) is the whole split's, so the manifest names the data set the run benches."""

    def __init__(self, data, shard: Shard):
        self._data = data
        self._examples = [example for example in data if shard.keeps(example.id)]

    def __len__(self) -> int:
        return len(self._examples)

    def __getitem__(self, index):
        return self._examples[index]

    def __iter__(self):
        return iter(self._examples)

    def __getattr__(self, name):
        return getattr(self._data, name)


class ShardStore:
    """A run's store seen by one shard: its own rows only, batch indices mapped to unique global ones.

    `finish` keeps the shard's result instead of writing result.json: the driver merges the shards.
    """

    def __init__(self, store, shard: Shard):
        self._store, self.shard = store, shard
        self.result: dict | None = None

    def __getattr__(self, name):  # dir, spec, spec_path, begin, ...
        return getattr(self._store, name)

    def is_finished(self) -> bool:
        return False  # the run is finished when the driver has merged every shard

    def done_samples(self) -> list[dict]:
        n, i = self.shard.of, self.shard.index
        return [{**row, "batch_index": row["batch_index"] // n} for row in self._store.done_samples()
                if self.shard.keeps(row["id"]) and row["batch_index"] % n == i]

    def append_samples(self, rows) -> None:
        n, i = self.shard.of, self.shard.index
        self._store.append_samples([{**row, "batch_index": row["batch_index"] * n + i} for row in rows])

    def finish(self, result: dict) -> None:
        self.result = result


def _pooled_latency(samples: list[dict], shards: list[dict], clock: str | None) -> dict:
    """One latency summary over every shard's batches when all ran on the same hardware, labelled as
    pooled; otherwise none at the top (the per-shard summaries stay in result["shards"])."""
    from harness.engine.bench import summarize_latency

    hardware = sorted({str(s.get("hardware")) for s in shards})
    if len(shards) == 1:
        return shards[0]["latency"]
    if len(hardware) == 1:
        latency = summarize_latency(samples, clock=clock)
        latency["how"] = (f"pooled over {len(shards)} shards, all on {hardware[0]} (each shard's own summary is "
                          f"in result.shards); " + latency["how"])
        return latency
    reason = (f"the {len(shards)} shards ran on different hardware ({', '.join(hardware)}): their timings are "
              "not pooled; see result.shards for each shard's latency with its node and GPU")
    return {"latency_ms": None, "how": reason, "clock": clock,
            "unavailable": {key: reason for key in ("latency_ms", "samples_per_s", "generated_tokens_per_s")}}


def merge_result(spec, samples: list[dict], shards: list[dict]) -> dict:
    """The run's result.json from its stored samples and its shards' reports.

    `shards`: one dict per shard, {"shard", "result" (the shard worker's result), "order" (the split's id
    order), "node_id", "hostname", "gpu_name", "hardware"}. Metrics, per-sample scores and the speed
    factors come from the merged rows in the single-worker order (`build_result`, shared with run_bench),
    so they equal a single worker's; latency follows `_pooled_latency`.
    """
    from harness.engine.bench import build_result
    from harness.trackers.memory import peak_memory

    shards = sorted(shards, key=lambda s: s["shard"]["index"])
    order = {sample_id: pos for pos, sample_id in enumerate(shards[0]["order"])}
    missing = [row["id"] for row in samples if row["id"] not in order]
    if missing:
        raise HarnessError(f"{spec.run_id}: samples.jsonl holds ids outside the run's data ({missing[:3]})")
    samples = sorted(samples, key=lambda row: order[row["id"]])
    first = shards[0]["result"]
    clock = (first.get("latency") or {}).get("clock")
    facts = ("node_id", "hostname", "gpu_name", "hardware")
    per_shard = [{**s["shard"], **{k: s.get(k) for k in facts}, "samples": s["result"].get("num_samples"),
                  "latency": s["result"].get("latency"), "memory": s["result"].get("memory"),
                  "session_wall_s": s["result"].get("session_wall_s")} for s in shards]
    manifest = dict(first.get("manifest") or {})
    manifest["cluster"] = {**(manifest.get("cluster") or {}),
                           "shards": [{**s["shard"], **{k: s.get(k) for k in facts}} for s in shards]}
    results = [s["result"] for s in shards]
    return build_result(
        spec, samples, manifest=manifest, env={}, clock=clock,
        latency=_pooled_latency(samples, [{**s, "latency": s["result"].get("latency")} for s in shards], clock),
        memory=max((r.get("memory") for r in results), key=lambda m: peak_memory(m)[1] or 0),  # the largest shard's
        warmup_ms=first.get("warmup_ms"), merge_ms=first.get("merge_ms"),
        session_wall_s=max(r.get("session_wall_s") or 0 for r in results),
        resumed=sum(r.get("resumed_samples") or 0 for r in results),
        oom_retries=[{**o, "shard": s["shard"]["index"]} for s in shards for o in s["result"].get("oom_retries") or []],
        started_at=min(r.get("started_at") or "" for r in results) or None, shards=per_shard)
