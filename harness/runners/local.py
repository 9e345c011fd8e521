"""Run specs in this process. Model code (torch) is imported here, never by the planner."""

from __future__ import annotations

from pathlib import Path

from harness.errors import HarnessError
from harness.plan import SYNTHETIC_PREFIX, Paths
from harness.progress import log
from harness.registry import load_preset
from harness.specs import FinetuneSpec, RunSpec
from harness.store import RunStore, read_json

__all__ = ["execute_finetune", "execute_run", "finetuned_adapter_id", "finished_finetune", "materialize_dataset"]


def materialize_dataset(source: str, preset_name: str | None, cache: Path) -> str:
    """Local path or hub id to load from; generates the preset's synthetic set once per cache."""
    if not source.startswith(SYNTHETIC_PREFIX):
        return source
    from harness.data import write_synthetic

    preset = load_preset(preset_name) if preset_name else None
    if not preset or not preset.synthetic:
        raise HarnessError(f"dataset '{source}' needs the preset that defines it (--preset)")
    target = cache / "data" / source[len(SYNTHETIC_PREFIX):]
    if not (target / ".complete").exists():
        log(f"generating synthetic charts into {target}")
        sizes = preset.synthetic.get("sizes", {})
        write_synthetic(target, sizes=sizes, seed=int(preset.synthetic.get("seed", 0)))
        (target / ".complete").write_text("ok")
    return str(target)


def finished_finetune(paths: Paths, model: str) -> dict | None:
    """The config (with adapter_id) of the completed fine-tune in the checkpoints folder, if any."""
    out = paths.finetune_dir(model)
    if (out / "training.json").exists() and (out / "finetune_config.json").exists():
        return read_json(out / "finetune_config.json")
    return None


def finetuned_adapter_id(paths: Paths, model: str) -> str | None:
    done = finished_finetune(paths, model)
    return done["adapter_id"] if done else None


def execute_finetune(spec: FinetuneSpec, paths: Paths, force: bool = False) -> dict:
    from harness.adapters import open_adapter
    from harness.data import load_split
    from harness.train.recipe import finetune_status, run_finetune

    out_dir = paths.finetune_dir(spec.model)
    if finetune_status(out_dir, spec) == "done" and not force:
        log(f"{spec.model}: fine-tune {spec.adapter_id} already complete in {out_dir}")
        return read_json(out_dir / "training.json")
    source = materialize_dataset(spec.dataset, spec.preset, paths.cache)
    data = load_split(source, spec.split, revision=spec.dataset_revision)
    quantization = "nf4" if spec.recipe.get("method") == "qlora" else None
    adapter = open_adapter(spec.model, spec.model_id, spec.model_revision, dtype=spec.dtype,
                           device=spec.device, cache=paths.cache, quantization=quantization)
    record = run_finetune(spec, out_dir, data, adapter, force=force)
    log(f"{spec.model}: fine-tune done in {record['wall_time_s']:.1f}s, loss {record['first_loss']:.3f} -> "
        f"{record['final_loss']:.3f}; adapter in {out_dir / 'adapter'}")
    return record


def execute_run(spec: RunSpec, paths: Paths) -> dict:
    from harness.adapters import open_adapter
    from harness.data import load_split
    from harness.engine import run_bench
    from harness.manifest import environment_manifest

    store = RunStore(paths.results, spec)
    if store.is_finished():
        log(f"{spec.run_id}: already finished, skipped")
        return read_json(store.result_path)
    adapter_path = None
    if spec.variant == "finetuned":
        out = paths.finetune_dir(spec.model)
        if finetuned_adapter_id(paths, spec.model) != spec.adapter_id:
            raise HarnessError(f"{out}: fine-tune {spec.adapter_id} not found; run `harness finetune {spec.model}`")
        adapter_path = str(out / "adapter")
    source = materialize_dataset(spec.dataset, spec.preset, paths.cache)
    data = load_split(source, spec.split, limit=spec.limit, revision=spec.dataset_revision)
    adapter = open_adapter(
        spec.model, spec.model_id, spec.model_revision, dtype=spec.dtype, device=spec.device, cache=paths.cache,
        adapter_path=adapter_path,
        adapter_source=spec.adapter_id if spec.variant == "study" else None,
        adapter_revision=spec.adapter_revision,
    )
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
    if spec.variant == "finetuned":
        # The training record travels with the result, so the leaderboard reads results alone.
        result["finetune"] = read_json(paths.finetune_dir(spec.model) / "training.json")
    store.finish(result)
    return result
