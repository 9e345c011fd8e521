"""`harness bench`: plan fine-tunes and runs, execute them with a runner, render the leaderboard."""

from __future__ import annotations

from dataclasses import replace

from harness.errors import HarnessError
from harness.plan import Paths, bench_specs, finetune_spec
from harness.progress import log
from harness.registry import list_models, load_model

__all__ = ["bench"]


def bench(args, preset: str | None, paths: Paths) -> int:
    from harness.runners.local import finished_finetune

    models = [c.name for c in list_models()] if args.all else args.model
    variants = args.variant or ["base", "finetuned"]
    runner = _runner(args.runner)
    adapter_ids: dict[str, str] = {}
    failures: list[str] = []
    if "finetuned" in variants:
        for model in models:
            if load_model(model).supports.get("finetune") == []:
                log(f"{model}: benchmark only (its card supports no fine-tune); no fine-tuned variant")
                continue
            fspec = finetune_spec(model, preset_name=preset, dataset=args.dataset, seed=args.seed,
                                  device=args.device, dtype=args.dtype)
            done = finished_finetune(paths, model)
            if done and done["model_id"] == fspec.model_id and done["dataset"] == fspec.dataset:
                # A fine-tune the user ran with their own settings (e.g. --epochs 2) is the one to bench.
                if done["adapter_id"] != fspec.adapter_id:
                    log(f"{model}: benchmarking the existing fine-tune {done['adapter_id']} in "
                        f"{paths.finetune_dir(model)} (its recipe differs from the defaults; "
                        f"`harness finetune {model} --force` redoes it)")
                adapter_ids[model] = done["adapter_id"]
                continue
            if args.no_finetune:
                raise HarnessError(f"{model}: fine-tune {fspec.adapter_id} missing and --no-finetune given")
            log(f"{model}: fine-tuned variant missing, fine-tuning first")
            try:
                runner.finetune(fspec, paths)
            except HarnessError as exc:
                failures.append(f"{model} fine-tune: {exc}")
                continue
            adapter_ids[model] = fspec.adapter_id
    specs = bench_specs(
        models, variants, preset_name=preset, benchmark=args.benchmark, dataset=args.dataset, split=args.split,
        limit=args.limit, batch_sizes=args.batch_size, seed=args.seed, device=args.device, dtype=args.dtype,
        adapter_ids=adapter_ids, skip_missing_adapters=True,
    )
    if getattr(args, "merge_adapter", False):
        specs = [replace(s, merge_adapter=True) if s.adapter_id else s for s in specs]
    finished = []
    for spec in specs:
        try:
            finished.append(runner.run(spec, paths))
        except HarnessError as exc:
            failures.append(f"{spec.run_id}: {exc}")
            log(f"error: {spec.run_id}: {exc}")
    finished = [r for r in finished if isinstance(r, dict) and "spec" in r]
    if len(set(args.batch_size or [])) > 1 and finished:
        from harness.engine.sweep import sweep_table

        log("batch-size sweep (★ = best samples/s per model variant):\n" + sweep_table(finished))
    if not args.no_leaderboard:
        from harness.leaderboard import write_leaderboard

        try:
            out = write_leaderboard([paths.results], paths.leaderboard)
            log(f"leaderboard written to {out}")
        except HarnessError as exc:
            failures.append(f"leaderboard: {exc}")
    if failures:
        for line in failures:
            log(f"failed: {line}")
        return 1
    return 0


class _LocalRunner:
    def finetune(self, fspec, paths):
        from harness.runners.local import execute_finetune

        return execute_finetune(fspec, paths)

    def run(self, spec, paths):
        from harness.runners.local import execute_run

        return execute_run(spec, paths)


def _runner(name: str):
    if name == "local":
        return _LocalRunner()
    raise HarnessError(f"runner '{name}' is not available yet")
