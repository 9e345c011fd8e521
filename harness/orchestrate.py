"""`harness bench`: plan fine-tunes and runs, execute them with a runner, render the leaderboard."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from harness.errors import HarnessError
from harness.plan import Paths, bench_specs, finetune_spec
from harness.progress import log
from harness.registry import list_models, load_model
from harness.specs import DEFAULT_RECIPE

__all__ = ["bench"]


def bench(args, preset: str | None, paths: Paths) -> int:
    from harness.runners.local import finished_finetune

    models = [c.name for c in list_models()] if args.all else args.model
    variants = args.variant or ["base", "finetuned"]
    recipe = getattr(args, "recipe", None) or DEFAULT_RECIPE
    runner = _runner(args.runner, recipe)
    adapter_ids: dict[str, str] = {}
    failures: list[str] = []
    if "finetuned" in variants:
        for model in models:
            if load_model(model).supports.get("finetune") == []:
                log(f"{model}: benchmark only (its card supports no fine-tune); no fine-tuned variant")
                continue
            fspec = finetune_spec(model, preset_name=preset, dataset=args.dataset, seed=args.seed,
                                  device=args.device, dtype=args.dtype, recipe=recipe)
            done = finished_finetune(paths, model)
            # Older records predate named recipes: they were trained with the official one.
            same_recipe = done and done.get("recipe_name", DEFAULT_RECIPE) == fspec.recipe_name
            if same_recipe and done["model_id"] == fspec.model_id and done["dataset"] == fspec.dataset:
                # A fine-tune the user ran with their own settings (e.g. --epochs 2) is the one to bench.
                if done["adapter_id"] != fspec.adapter_id:
                    log(f"{model}: benchmarking the existing fine-tune {done['adapter_id']} in "
                        f"{paths.finetune_dir(model)} (its recipe differs from the defaults; "
                        f"`harness finetune {model} --recipe {recipe} --force` redoes it)")
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
    skipped: list[str] = []
    specs = bench_specs(
        models, variants, preset_name=preset, benchmark=args.benchmark, dataset=args.dataset, split=args.split,
        limit=args.limit, batch_sizes=args.batch_size, seed=args.seed, device=args.device, dtype=args.dtype,
        adapter_ids=adapter_ids, skip_missing_adapters=True, skip_missing_studies=args.all, skipped=skipped,
    )
    for line in skipped:
        log(line)
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
    if not specs and not failures:
        log("nothing to run for these models and variants")
    if not args.no_leaderboard and not specs and not paths.results.exists():
        log(f"leaderboard not written: no results in {paths.results} yet")
    elif not args.no_leaderboard:
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


class _DockerRunner:
    """Each fine-tune and run in its model's pinned image; results land in the host's folders."""

    def __init__(self, recipe: str = DEFAULT_RECIPE):
        self.recipe = recipe  # the container plans the same fine-tune spec, so it needs the recipe name

    def _run(self, model: str, argv: list[str], paths: Paths, extra_volumes: dict | None = None) -> None:
        from harness.runners.docker import image_for, run_in_image, standard_volumes

        card = load_model(model)
        image = image_for(model, name=card.image or None)
        # A cache per image: twins are saved by that image's own library versions.
        volumes = standard_volumes(results=paths.results.resolve(), checkpoints=paths.checkpoints.resolve(),
                                   cache=(paths.cache / f"container-{model}").resolve())
        volumes.update(extra_volumes or {})
        log(f"{model}: running `harness {' '.join(argv)}` in {image}")
        run_in_image(image, argv, volumes=volumes, on_log=lambda line: log(f"  [{model}] {line}")).check()

    @staticmethod
    def _common(preset: str | None, seed: int, device: str, dtype: str, dataset: str) -> tuple[list[str], dict]:
        argv = ["--seed", str(seed), "--device", device, "--dtype", dtype]
        argv += ["--preset", preset] if preset else []
        volumes = {}
        if not dataset.startswith("synthetic:") and Path(dataset).exists():
            # Mounted at the same absolute path, so the container plans the same dataset string.
            argv += ["--dataset", str(Path(dataset).resolve())]
            volumes[str(Path(dataset).resolve())] = str(Path(dataset).resolve()) + ":ro"
        elif not dataset.startswith("synthetic:"):
            argv += ["--dataset", dataset]
        return argv, volumes

    def finetune(self, fspec, paths: Paths):
        common, volumes = self._common(fspec.preset, fspec.seed, fspec.device, fspec.dtype, fspec.dataset)
        self._run(fspec.model, ["finetune", fspec.model, "--recipe", fspec.recipe_name, *common], paths, volumes)

    def run(self, spec, paths: Paths):
        from harness.store import RunStore, read_json

        store = RunStore(paths.results, spec)
        if store.is_finished():
            log(f"{spec.run_id}: already finished, skipped")
            return read_json(store.result_path)
        common, volumes = self._common(spec.preset, spec.seed, spec.device, spec.dtype, spec.dataset)
        argv = ["bench", "--model", spec.model, "--variant", spec.variant, "--batch-size", str(spec.batch_size),
                "--split", spec.split, "--no-finetune", "--no-leaderboard", "--recipe", self.recipe, *common]
        argv += ["--limit", str(spec.limit)] if spec.limit else []
        argv += ["--merge-adapter"] if spec.merge_adapter else []
        self._run(spec.model, argv, paths, volumes)
        return read_json(store.result_path) if store.result_path.exists() else None


def _runner(name: str, recipe: str = DEFAULT_RECIPE):
    if name == "docker":
        return _DockerRunner(recipe)
    return _LocalRunner()
