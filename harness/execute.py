"""The worker: run exactly one spec (a fine-tune or a bench run) and write its outputs into its folder.

Every runner ends here, in process (local), in the model's container (docker) or on a cluster node:
`harness execute FOLDER` reads FOLDER/spec.json and nothing else. It never reads models/, benchmarks/
or presets/: what it needs is in the spec, and what is in the spec is in its hash.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from harness.errors import HarnessError
from harness.fileio import read_json, write_text_atomic
from harness.lock import folder_lock
from harness.plan import SYNTHETIC_PREFIX
from harness.progress import log
from harness.specs import FinetuneSpec, RunSpec, spec_from_record

__all__ = ["execute", "execute_folder", "finetune_adapter_dir", "load_spec", "materialize_dataset"]


def load_spec(folder: Path) -> RunSpec | FinetuneSpec:
    """The spec in FOLDER/spec.json (or the spec.json file itself)."""
    path = Path(folder)
    path = path if path.name == "spec.json" else path / "spec.json"
    if not path.is_file():
        raise HarnessError(f"{path}: no spec.json here (plan it with `harness bench ... --dry-run --json`)")
    return spec_from_record(read_json(path), where=str(path))


def materialize_dataset(spec: RunSpec | FinetuneSpec, cache: Path) -> str:
    """Local path or hub id to load from; generates the spec's synthetic set once per cache."""
    if not spec.dataset.startswith(SYNTHETIC_PREFIX):
        return spec.dataset
    from harness.data import write_synthetic

    if not spec.synthetic:
        raise HarnessError(f"dataset '{spec.dataset}': the spec carries no synthetic recipe")
    target = Path(cache) / "data" / spec.dataset[len(SYNTHETIC_PREFIX):]
    if not (target / ".complete").exists():
        log(f"generating synthetic charts into {target}")
        write_synthetic(target, sizes=dict(spec.synthetic.get("sizes", {})), seed=int(spec.synthetic.get("seed", 0)),
                        data_format=spec.synthetic.get("format"))
        write_text_atomic(target / ".complete", "ok")
    return str(target)


def finetune_adapter_dir(checkpoints: Path, adapter_id: str) -> Path:
    return Path(checkpoints) / adapter_id / "adapter"


def _execute_finetune(spec: FinetuneSpec, folder: Path, cache: Path, force: bool) -> dict:
    from harness.adapters import open_adapter
    from harness.data import load_split
    from harness.train.recipe import finetune_status, run_finetune

    if finetune_status(folder, spec) == "done" and not force:
        # A kill between training.json (written last) and the checkpoint's removal leaves it behind.
        shutil.rmtree(folder / "checkpoint", ignore_errors=True)
        log(f"{spec.model}: fine-tune {spec.adapter_id} already complete in {folder}")
        return read_json(folder / "training.json")
    source = materialize_dataset(spec, cache)
    data = load_split(source, spec.split, revision=spec.dataset_revision, data_format=spec.data_format)
    quantization = "nf4" if spec.recipe.method == "qlora" else None
    adapter = open_adapter(spec.model_facts, spec.model_id, spec.model_revision, dtype=spec.dtype,
                           device=spec.device, cache=cache, quantization=quantization)
    record = run_finetune(spec, folder, data, adapter, force=force)
    log(f"{spec.model}: fine-tune done in {record['wall_time_s']:.1f}s, loss {record['first_loss']:.3f} -> "
        f"{record['final_loss']:.3f}; adapter in {folder / 'adapter'}")
    return record


def _execute_run(spec: RunSpec, folder: Path, checkpoints: Path, cache: Path, force: bool,
                 store=None, shard=None) -> dict:
    from harness.adapters import open_adapter
    from harness.data import load_split
    from harness.engine import run_bench
    from harness.manifest import environment_manifest
    from harness.store import RunStore

    store = store or RunStore(folder, spec)
    if shard is not None:  # one data-parallel shard (harness/shards.py): its ids only; the driver merges
        from harness.shards import ShardStore

        store = ShardStore(store, shard)
    if force:  # measure again from the first sample
        store.result_path.unlink(missing_ok=True)
        store.samples_path.unlink(missing_ok=True)
    if store.is_finished():
        log(f"{spec.run_id}: already finished, skipped")
        return read_json(store.result_path)
    adapter_path = training = None
    if spec.variant == "finetuned":
        adapter_dir = finetune_adapter_dir(checkpoints, spec.adapter_id)
        if not (adapter_dir.parent / "training.json").exists():
            raise HarnessError(f"{adapter_dir.parent}: fine-tune {spec.adapter_id} not found or not finished")
        adapter_path, training = str(adapter_dir), read_json(adapter_dir.parent / "training.json")
    source = materialize_dataset(spec, cache)
    data = load_split(source, spec.split, limit=spec.limit, revision=spec.dataset_revision,
                      data_format=spec.data_format)
    if shard is not None:
        data = shard.select(data)
    adapter = open_adapter(
        spec.model_facts, spec.model_id, spec.model_revision, dtype=spec.dtype, device=spec.device, cache=cache,
        adapter_path=adapter_path,
        adapter_source=spec.adapter_id if spec.variant == "study" else None,
        adapter_revision=spec.adapter_revision, adapter_kind=spec.adapter_kind,
        load=spec.backend == "transformers",
    )
    if spec.backend != "transformers":  # the model's adapter builds the prompts; the engine answers them
        from harness.backends.vllm import VLLMAdapter

        adapter = VLLMAdapter(adapter, spec, cache)
        adapter.load()
    manifest = environment_manifest(adapter.request.device)
    manifest.update({
        "dataset_source": source,
        "dataset_fingerprint": data.fingerprint,
        "dataset_rows": len(data),
        "model_revision": spec.model_revision,
        "dtype": spec.dtype,
        "batch_size": spec.batch_size,
        "seed": spec.seed,
    })
    result = run_bench(spec, store, adapter, data, manifest)
    if training is not None:
        result["finetune"] = training  # the training record travels with the result: the leaderboard reads results
    store.finish(result)
    return result


def execute(spec: RunSpec | FinetuneSpec, folder: Path, *, checkpoints: Path, cache: Path,
            force: bool = False, threads: int | None = None, store=None, shard=None) -> dict:
    """Run one spec into `folder`; returns its record (result.json or training.json).

    A finished spec returns its record; an interrupted one resumes; `force` starts it over. The folder
    is locked for the duration (harness/lock.py): a second writer is refused in one line. Third-party
    output goes to FOLDER/log.txt (harness/runlog.py); `threads` (else $HARNESS_THREADS) sets torch's.
    A cluster runner may pass the run's `store` (rows sent to its driver) and a `shard` (harness/shards.py).
    """
    from harness.runlog import apply_threads, run_log

    folder = Path(folder)
    # One writer per folder, taken here so it holds for every runner (local, docker, cluster).
    if isinstance(spec, FinetuneSpec):
        with folder_lock(folder, "fine-tune"), run_log(folder / "log.txt"):
            apply_threads(threads)
            return _execute_finetune(spec, folder, Path(cache), force)
    with folder_lock(folder, "bench run"), run_log(folder / "log.txt"):
        apply_threads(threads)
        return _execute_run(spec, folder, Path(checkpoints), Path(cache), force, store, shard)


def execute_folder(folder: Path, *, checkpoints: Path, cache: Path, force: bool = False,
                   threads: int | None = None) -> dict:
    """`harness execute FOLDER`: the spec in FOLDER/spec.json, outputs into FOLDER."""
    folder = Path(folder)
    folder = folder.parent if folder.name == "spec.json" else folder
    return execute(load_spec(folder), folder, checkpoints=checkpoints, cache=cache, force=force, threads=threads)
