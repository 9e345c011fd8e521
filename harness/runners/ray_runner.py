"""Run specs as Ray tasks on an existing cluster (`--runner ray [--address ADDR]`, else RAY_ADDRESS, else a
local Ray started here), one task per fine-tune and one per shard of a run (`--shards N`, harness/shards.py).

What crosses to a node is the job payload: the spec record, the shard `{"index", "of"}`, the driver's
cache path and, for a fine-tuned run, the adapter's files (small LoRA files, shipped from the driver:
no shared filesystem is assumed). The node runs the same worker as every runner, `harness.execute`.
Rows come back per batch to `_Store`, an actor on the driver's node that owns the run's RunStore (and
its folder lock): a retried task asks it for the done ids first, so a retry never redoes a stored
sample. The driver merges the shards into result.json (shards.merge_result) and writes a fine-tune's
output files into its folder; `check_output` then holds as for every runner.

Two ways to run the worker on a node. Default: in the Ray worker's own Python (in process), which
streams rows per batch and needs only the harness installed on the nodes; a spec whose pins that
environment cannot satisfy is skipped, as by the local runner. HARNESS_RAY_IMAGES=1: the task starts
`docker run` of the model's pinned image with the GPU ids Ray assigned (runtime_env image_uri passes
no GPUs through, ray-project/ray#58399); rows then come back when the container exits, and shards are
refused (the image has no Ray to reach the driver).
"""

from __future__ import annotations

import os
from contextlib import ExitStack
from pathlib import Path

from harness.errors import HarnessError
from harness.progress import Board, log
from harness.runners.base import FAILED, FINISHED, SKIPPED, Job, JobGraph, Outcome, Runner, check_output

__all__ = ["RayRunner"]

IMAGES_ENV = "HARNESS_RAY_IMAGES"
MAX_RETRIES = 3  # a task whose worker process died is rerun this many times, then reported failed
OBJECT_STORE_BYTES = 100 * 1024 * 1024  # a Ray started here: the rows and adapters are small


def _ray():
    try:
        import ray
    except ImportError as exc:
        raise HarnessError("--runner ray: ray is not installed (pip install -e '.[ray]')") from exc
    return ray


def _read_files(root: Path, skip=(".lock",)) -> dict[str, bytes]:
    root = Path(root)
    if not root.is_dir():
        return {}
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and p.name not in skip}


def _write_files(root: Path, files: dict[str, bytes]) -> None:
    from harness.fileio import write_bytes_atomic

    for rel, data in (files or {}).items():
        path = Path(root) / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        write_bytes_atomic(path, data)


class _Store:
    """The driver-side owner of each run's RunStore (a Ray actor pinned to the driver's node)."""

    def __init__(self):
        self.stores, self.locks, self.counts, self.totals = {}, {}, {}, {}

    def open(self, run_id: str, folder: str, spec_record: dict, force: bool) -> int:
        from harness.lock import folder_lock
        from harness.specs import spec_from_record
        from harness.store import RunStore

        lock = ExitStack()
        lock.enter_context(folder_lock(folder, "bench run (ray driver)"))
        store = RunStore(folder, spec_from_record(spec_record, where=f"{folder}/spec.json"))
        if force:
            store.result_path.unlink(missing_ok=True)
            store.samples_path.unlink(missing_ok=True)
        self.stores[run_id], self.locks[run_id] = store, lock
        self.counts[run_id] = len(store.done_samples())
        return self.counts[run_id]

    def done(self, run_id: str) -> list[dict]:
        return self.stores[run_id].done_samples()

    def append(self, run_id: str, rows: list[dict]) -> None:
        store = self.stores[run_id]
        stored = {row["id"] for row in store.done_samples()}
        rows = [row for row in rows if row["id"] not in stored]  # a retry racing its dead predecessor
        store.append_samples(rows)
        self.counts[run_id] += len(rows)

    def total(self, key: str, count: int) -> None:
        self.totals[key] = count

    def progress(self) -> tuple[dict, dict]:
        return dict(self.counts), dict(self.totals)

    def finish(self, run_id: str, result: dict) -> None:
        self.stores[run_id].finish(result)

    def close(self, run_id: str | None = None) -> None:
        for key in [run_id] if run_id else list(self.locks):
            lock = self.locks.pop(key, None)
            if lock:
                lock.close()


class _RemoteStore:
    """What a node's worker sees as the run's store: rows go to the driver's `_Store` per batch."""

    def __init__(self, actor, spec, folder: Path):
        self.actor, self.spec, self.dir = actor, spec, Path(folder)
        self.spec_path, self.samples_path, self.result_path = (self.dir / n for n in
                                                               ("spec.json", "samples.jsonl", "result.json"))

    def begin(self) -> None:  # the driver wrote spec.json
        self.dir.mkdir(parents=True, exist_ok=True)

    def is_finished(self) -> bool:
        return False

    def done_samples(self) -> list[dict]:
        return _ray().get(self.actor.done.remote(self.spec.run_id))

    def append_samples(self, rows) -> None:
        _ray().get(self.actor.append.remote(self.spec.run_id, [dict(row) for row in rows]))

    def finish(self, result) -> None:
        pass


def _prepare_cache(spec, cache: Path) -> None:
    """Twins and synthetic data are built once per node cache: concurrent shards wait for the first."""
    import fcntl

    from harness.execute import materialize_dataset

    cache.mkdir(parents=True, exist_ok=True)
    with open(cache / ".ray-prepare.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        materialize_dataset(spec, cache)
        if spec.model_id.startswith("twin:"):
            from harness.adapters.twins.cache import ensure_twin

            ensure_twin(spec.model_facts, cache)


def _job_task(payload: dict, adapter_files: dict | None, store) -> dict:
    """One job on a node (a Ray task): returns the node's facts and what the driver writes back."""
    from harness.doctor import check_card
    from harness.execute import execute
    from harness.manifest import cluster_facts
    from harness.shards import Shard
    from harness.specs import spec_from_record

    spec = spec_from_record(payload["spec"], where=f"ray job {payload['id']}")
    facts = cluster_facts(spec.device)
    problems = check_card(spec.model_facts)
    if problems:
        return {**facts, "skipped": f"the node's Python environment does not match the model's pins "
                                    f"({'; '.join(problems)}); run it in its image with {IMAGES_ENV}=1"}
    cache = Path(payload["cache"])
    scratch = cache / "ray-jobs" / payload["id"]  # node-local; the same path on a retry, so a fine-tune resumes
    checkpoints = scratch / "checkpoints"
    _write_files(checkpoints, adapter_files)
    _prepare_cache(spec, cache)
    threads = payload.get("threads")
    if spec.kind == "finetune":
        folder = scratch / "finetune"
        execute(spec, folder, checkpoints=checkpoints, cache=cache, force=payload["force"], threads=threads)
        return {**facts, "files": _read_files(folder, skip=(".lock", "spec.json"))}

    class _Counted(Shard):  # tells the driver the shard's size, for the live view
        def select(self, data):
            part = super().select(data)
            store.total.remote(f"{spec.run_id}#{self.index}", len(part))
            return part

    shard = _Counted(**payload["shard"])
    folder = scratch / "run"
    result = execute(spec, folder, checkpoints=checkpoints, cache=cache, threads=threads,
                     store=_RemoteStore(store, spec, folder), shard=shard)
    return {**facts, "shard": shard.to_dict(), "result": result, "order": shard.order,
            "thumbs": _read_files(folder / "thumbs")}


def _image_task(payload: dict, adapter_files: dict | None, store) -> dict:
    """One job in its model's image on a node: `docker run` with the GPU ids Ray assigned to this task."""
    from harness.fileio import write_json_atomic
    from harness.manifest import cluster_facts
    from harness.runners.docker import run_in_image
    from harness.runners.docker_runner import container_invocation
    from harness.specs import spec_from_record
    from harness.store import RunStore

    ray = _ray()
    spec = spec_from_record(payload["spec"], where=f"ray job {payload['id']}")
    facts = cluster_facts(spec.device)
    scratch = Path(payload["cache"]) / "ray-jobs" / payload["id"]
    folder = scratch / ("finetune" if spec.kind == "finetune" else "run")
    write_json_atomic(folder / "spec.json", payload["spec"])
    _write_files(scratch / "checkpoints", adapter_files)
    local = None
    if spec.kind == "run":  # the container resumes from the rows the driver already has
        local = RunStore(folder, spec)
        local.samples_path.unlink(missing_ok=True)
        local.append_samples(ray.get(store.done.remote(spec.run_id)))
    job = Job(spec, folder, scratch / "checkpoints", Path(payload["cache"]))
    image, argv, volumes = container_invocation(job, payload["force"])
    gpus = [str(g) for g in ray.get_gpu_ids()]
    outcome = run_in_image(image, argv, volumes=volumes, gpu_ids=gpus or None, gpu=None if gpus else False)
    if not outcome.ok:
        return {**facts, "error": outcome.describe(), "log_tail": list(outcome.log_tail)}
    if local is None:
        return {**facts, "files": _read_files(folder, skip=(".lock", "spec.json"))}
    ray.get(store.append.remote(spec.run_id, local.done_samples()))
    from harness.fileio import read_json

    result = read_json(local.result_path)
    return {**facts, "shard": {"index": 0, "of": 1}, "result": result, "image_result": True,
            "order": [row["id"] for row in local.done_samples()], "thumbs": _read_files(folder / "thumbs")}


def _failure(exc: BaseException) -> tuple[str, tuple[str, ...]]:
    """One line and the last lines of a failed task's error (RayTaskError carries the worker's traceback)."""
    cause = getattr(exc, "cause", None)
    if isinstance(cause, HarnessError):
        return str(cause), ()
    text = str(exc).strip().splitlines() or [type(exc).__name__]
    last = next((line for line in reversed(text) if line.strip()), text[-1])
    return last.strip(), tuple(line for line in text[-20:] if line.strip())


class RayRunner(Runner):
    name = "ray"

    def __init__(self, force: bool = False, address: str | None = None, shards: int = 1,
                 max_retries: int = MAX_RETRIES, **_):
        if not isinstance(shards, int) or shards < 1:
            raise HarnessError(f"--shards {shards}: expected a whole number >= 1")
        self.force, self.shards, self.max_retries = force, shards, max_retries
        self.address = address or os.environ.get("RAY_ADDRESS") or None
        self.images = os.environ.get(IMAGES_ENV, "") not in ("", "0")
        if self.images and shards > 1:
            raise HarnessError(f"--shards {shards} with {IMAGES_ENV}=1: a container cannot reach the driver per "
                               "batch; shard in process (unset it) or bench with --shards 1")

    def _connect(self):
        import harness

        ray = _ray()
        if not ray.is_initialized():
            # The harness must import on the nodes: its checkout travels as PYTHONPATH (a node with the
            # harness installed ignores a path it does not have).
            path = os.pathsep.join(filter(None, [str(Path(harness.__file__).resolve().parents[1]),
                                                 os.environ.get("PYTHONPATH")]))
            options = {"runtime_env": {"env_vars": {"PYTHONPATH": path}}, "log_to_driver": False,
                       "include_dashboard": False}
            if not self.address:
                options["object_store_memory"] = OBJECT_STORE_BYTES
            import sys

            # Ray needs real file descriptors; a session log (harness/runlog.py) may have wrapped them.
            saved, (sys.stdout, sys.stderr) = (sys.stdout, sys.stderr), (sys.__stdout__, sys.__stderr__)
            try:
                ray.init(address=self.address, **options)
            finally:
                sys.stdout, sys.stderr = saved
        return ray

    def submit(self, jobs):
        jobs = list(jobs)
        if not jobs:
            return
        ray = self._connect()
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        here = NodeAffinitySchedulingStrategy(ray.get_runtime_context().get_node_id(), soft=False)
        store = ray.remote(_Store).options(num_cpus=0, scheduling_strategy=here).remote()
        task = ray.remote(_image_task if self.images else _job_task)
        graph, running, shards, adapters = JobGraph(jobs), {}, {}, {}
        board = Board()

        def start(job: Job) -> None:
            cuda = str(job.spec.device).startswith("cuda")
            resources = {"num_gpus": 1, "num_cpus": 1} if cuda else {"num_cpus": 1}
            files = None
            if job.kind == "run" and job.spec.variant == "finetuned":
                if job.spec.adapter_id not in adapters:
                    adapters[job.spec.adapter_id] = ray.put(
                        {f"{job.spec.adapter_id}/{k}": v for k, v in
                         _read_files(Path(job.checkpoints) / job.spec.adapter_id,
                                     skip=(".lock",)).items() if k.startswith("adapter/") or k == "training.json"})
                files = adapters[job.spec.adapter_id]
            count = self.shards if job.kind == "run" else 1
            if job.kind == "run":
                ray.get(store.open.remote(job.id, str(Path(job.folder).resolve()), job.spec.record(), self.force))
            shards[job.id] = {"left": count, "reports": [], "error": None}
            for index in range(count):
                payload = {"id": job.id + (f"-shard{index}of{count}" if count > 1 else ""),
                           "spec": job.spec.record(), "shard": {"index": index, "of": count},
                           "cache": str(Path(job.cache).resolve()), "force": self.force, "threads": 1 if not cuda
                           else None}
                ref = task.options(max_retries=self.max_retries, retry_exceptions=False, **resources).remote(
                    payload, files, store)
                running[ref] = job

        def finish(job: Job) -> Outcome:
            state = shards.pop(job.id)
            try:
                if state["error"]:
                    return Outcome(job.id, job.kind, FAILED, state["error"][0], job.folder, None, state["error"][1])
                reports = state["reports"]
                skipped = next((r["skipped"] for r in reports if "skipped" in r), None)
                if skipped:
                    return Outcome(job.id, job.kind, SKIPPED, skipped, job.folder)
                if job.kind == "finetune":
                    _write_files(job.folder, reports[0]["files"])
                else:
                    self._merge(ray, store, job, reports)
                return check_output(job) or Outcome(job.id, job.kind, FINISHED, folder=job.folder)
            except HarnessError as exc:
                return Outcome(job.id, job.kind, FAILED, str(exc), job.folder)
            finally:
                if job.kind == "run":
                    ray.get(store.close.remote(job.id))

        try:
            for job in graph.take():
                start(job)
            while running:
                ready, _ = ray.wait(list(running), num_returns=1, timeout=2.0)
                counts, totals = ray.get(store.progress.remote())
                board.show({key: (counts.get(key, 0), sum(v for k, v in totals.items() if k.startswith(key + "#"))
                                  or None) for key in shards if key in counts})
                for ref in ready:
                    job = running.pop(ref)
                    state = shards[job.id]
                    try:
                        report = ray.get(ref)
                        if "error" in report:
                            state["error"] = (report["error"], tuple(report.get("log_tail") or ()))
                        state["reports"].append(report)
                    except Exception as exc:  # the task raised, or its worker died more than max_retries times
                        state["error"] = state["error"] or _failure(exc)
                    state["left"] -= 1
                    if state["left"] == 0:
                        outcome = finish(job)
                        yield outcome
                        yield from graph.ended(outcome)
                for job in graph.take():
                    start(job)
        except KeyboardInterrupt:
            for ref in running:
                ray.cancel(ref, force=True)
            ray.get(store.close.remote())  # the rows stored so far stay: rerun the command to resume
            log("ray: tasks cancelled; the stored samples stay and the same command resumes")
            raise
        finally:
            board.close()

    def _merge(self, ray, store, job: Job, reports: list[dict]) -> None:
        from harness.shards import merge_result

        if any(r.get("image_result") for r in reports):
            result = reports[0]["result"]  # one container wrote the whole run's result itself
            result.setdefault("manifest", {})["cluster"] = {
                "ray_version": ray.__version__,
                "shards": [{"index": 0, "of": 1, **{k: reports[0].get(k) for k in ("node_id", "hostname",
                                                                                  "gpu_name", "hardware")}}]}
        else:
            samples = ray.get(store.done.remote(job.id))
            result = merge_result(job.spec, samples, reports)
            result["manifest"]["cluster"]["ray_version"] = ray.__version__
            result["manifest"]["dataset_rows"] = len(reports[0]["order"])
        training = reports[0]["result"].get("finetune")
        if training is not None:
            result["finetune"] = training
        for report in reports:
            _write_files(Path(job.folder) / "thumbs", report.get("thumbs"))
        ray.get(store.finish.remote(job.id, result))
