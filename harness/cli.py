"""Command line: parse arguments and call one function per verb. No torch at import time."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from harness import __version__
from harness.errors import HarnessError

__all__ = ["build_parser", "main"]


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """`-h` shows each flag's default, unless it has none (unset, an off switch) or its help already says it."""

    def _get_help_string(self, action):
        text = action.help or ""
        if action.default is None or action.default is False or action.default == argparse.SUPPRESS \
                or "default" in text:  # `is`: a default of 0 is shown
            return text
        return super()._get_help_string(action)


class _Parser(argparse.ArgumentParser):
    """Every parser and subparser (add_subparsers builds type(self)) gets the formatter that shows defaults."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", _HelpFormatter)
        super().__init__(*args, **kwargs)


def _batch_sizes(text: str) -> list[int]:
    try:
        sizes = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"--batch-size takes integers like 8 or 1,4,8, got '{text}'") from None
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError(f"--batch-size needs positive integers, got '{text}'")
    return sizes


def _preset(args) -> str | None:
    return args.preset or os.environ.get("HARNESS_PRESET") or None


def _add_paths(p: argparse.ArgumentParser, leaderboard: bool = False) -> None:
    p.add_argument("--preset", help="named overrides from presets/ (e.g. smoke); env HARNESS_PRESET")
    p.add_argument("--results", help="results folder (env HARNESS_RESULTS_DIR; default per preset)")
    p.add_argument("--checkpoints", help="fine-tune outputs (env HARNESS_CHECKPOINTS_DIR; default per preset)")
    if leaderboard:
        p.add_argument("--leaderboard", help="Markdown page to write, with index.html, leaderboard.json and "
                                             "assets/ next to it; an existing folder gets LEADERBOARD.md "
                                             "inside it (default per preset)")


def _add_recipe(p: argparse.ArgumentParser) -> None:
    from harness.specs import DEFAULT_RECIPE

    p.add_argument("--recipe", default=DEFAULT_RECIPE,
                   help="the card's named fine-tune recipe: official (default) or study (the original study's "
                        "settings); `harness models` lists them")


def _add_prompt(p: argparse.ArgumentParser) -> None:
    p.add_argument("--prompt", help="the benchmark card's named prompt variant, e.g. vlmevalkit or lmms_eval "
                                    "(default: the card's default_prompt; shown with the run)")


def _add_overrides(p: argparse.ArgumentParser, decoding: bool) -> None:
    p.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="edit the model card for this run, as if its YAML said so (part of the run id): e.g. "
                        "processor.size.longest_edge=768, attn_implementation=sdpa, dtype=float16, "
                        "finetune.lora.r=16 (repeatable)")
    if decoding:
        p.add_argument("--decoding", action="append", metavar="KEY=VALUE",
                       help="generation setting for every variant (part of the run id): e.g. max_new_tokens=32, "
                            "num_beams=4 (repeatable)")


def _paths(args):
    from harness.plan import resolve_paths
    from harness.registry import load_preset

    preset = _preset(args)
    return resolve_paths(load_preset(preset) if preset else None, getattr(args, "results", None),
                         getattr(args, "checkpoints", None), getattr(args, "leaderboard", None))


def model_record(card) -> dict:
    """What `harness models --json` prints per card (read by scripts/compose-gen.py and scripts/docker-*.sh)."""
    return {"name": card.name, "display_name": card.display_name, "family": card.family, "hub_id": card.hub_id,
            "revision": card.revision, "image": card.image, "pins": dict(card.environment),
            "supports": dict(card.supports), "published": list(card.published)}


def _cell(text) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ").strip()


def models_markdown(cards) -> str:
    """The README's model table: every card with what it supports and the scores others published."""
    lines = ["| name | model | fine-tune | batching | backends | published score (benchmark, source) |",
             "|---|---|---|---|---|---|"]
    for c in cards:
        tune = c.supports.get("finetune")
        tune = ", ".join(tune) if tune else ("none (benchmark only)" if tune == [] else "yes")
        scores = "; ".join(
            f"{p['value']}{' ' + p['subset'] if p.get('subset') else ''} ({p['benchmark']}, {p['source']}"
            f"{', ' + p['note'] if p.get('note') else ''})" for p in c.published) or "–"
        backends = ", ".join(c.supports.get("backends") or ["transformers"])
        lines.append("| " + " | ".join(_cell(x) for x in (
            f"`{c.name}`", f"{c.display_name} (`{c.hub_id}`)", tune, c.supports.get("batching") or "–",
            backends, scores)) + " |")
    return "\n".join(lines) + "\n"


def cmd_models(args) -> int:
    from tabulate import tabulate

    from harness.registry import list_models

    cards = list_models()
    if args.json:
        print(json.dumps([model_record(c) for c in cards], indent=2))
        return 0
    if args.markdown:
        print(models_markdown(cards), end="")
        return 0
    rows = [[c.name, c.display_name, c.hub_id, c.revision[:12], c.adapter.split(":")[-1],
             ", ".join(f"{k}{v}" for k, v in c.environment.items()),
             c.twin.get("builder", "–").split(":")[0].rsplit(".", 1)[-1] + " twin" if c.twin else "–",
             c.study.get("hub_id", "–") if c.study else "–",
             ", ".join(c.recipes) if c.recipes else ("official" if c.finetune else "–")] for c in cards]
    print(tabulate(rows, headers=["name", "model", "hub id", "revision", "adapter", "pinned environment",
                                  "offline twin", "study checkpoint", "recipes (--recipe)"], tablefmt="github"))
    return 0


def cmd_data_synth(args) -> int:
    from harness.data import write_synthetic

    sizes = {"train": args.train, "val": args.val, "test": args.test}
    out = write_synthetic(args.out, sizes=sizes, seed=args.seed)
    print(f"wrote synthetic chart QA ({sizes}, seed {args.seed}) to {out}")
    return 0


def cmd_data_check(args) -> int:
    from harness.data.check import check_data, format_report

    header, reports = check_data(args.source, benchmark=args.benchmark, split=args.split)
    print(format_report(header, reports))
    return 1 if any(r.problem_count for r in reports) else 0


def cmd_data_build(args) -> int:
    from harness.data import build_pjn_charts

    out = build_pjn_charts(args.out, source=args.source, seed=args.seed, revision=args.revision)
    print(f"rebuilt PJN_CHARTS from {args.source} into {out}")
    return 0


FINETUNE_FLAGS = ("epochs", "max_steps", "batch_size", "grad_accum", "lr", "method", "limit")


def _request(args, models: tuple[str, ...], variants: tuple[str, ...]):
    """The one typed request the planner takes; every flag that changes a number lands here."""
    from harness.overrides import parse_assignments
    from harness.plan import BenchRequest

    sets = parse_assignments(getattr(args, "set", None), "--set")
    if args.command == "finetune":  # the fine-tune flags are shorthands for --set finetune.KEY=VALUE
        sets += [(("finetune", key), getattr(args, key)) for key in FINETUNE_FLAGS if getattr(args, key) is not None]
    return BenchRequest(
        models=models,
        variants=variants,
        preset=_preset(args),
        benchmark=getattr(args, "benchmark", None) or "chartqa",
        dataset=args.dataset,
        dataset_revision=getattr(args, "dataset_revision", None),
        split=getattr(args, "split", None),
        limit=getattr(args, "limit", None) if args.command == "bench" else None,
        batch_sizes=tuple(getattr(args, "batch_size", None) or (8,)) if args.command == "bench" else (8,),
        seed=args.seed,
        device=args.device,
        dtype=args.dtype,
        recipe=args.recipe,
        prompt=getattr(args, "prompt", None),
        sets=tuple(sets),
        decoding=tuple(parse_assignments(getattr(args, "decoding", None), "--decoding")),
        merge_adapter=bool(getattr(args, "merge_adapter", False)),
        allow_unpinned_code=bool(getattr(args, "allow_unpinned_code", False)),
        backend=getattr(args, "backend", None) or "transformers",
    )


def cmd_finetune(args) -> int:
    from harness.adapters.open import ADAPTERS
    from harness.execute import execute
    from harness.orchestrate import prepare_job
    from harness.plan import Plan, check_devices, plan_finetune
    from harness.registry import load_model

    card = load_model(args.model)
    refusal = ADAPTERS.get(card.adapter).finetune_refusal(card)
    if refusal or card.supports.get("finetune") == []:
        raise HarnessError(refusal or f"{card.name}: its card supports no fine-tune (benchmark only)")
    spec = plan_finetune(card, _request(args, (args.model,), ("finetuned",)))
    paths = _paths(args)
    if args.dry_run:
        from harness.orchestrate import plan_table

        print(json.dumps(spec.record(), indent=2, sort_keys=True, default=str) if args.json
              else plan_table(Plan(finetunes=(spec,))))
        return 0
    check_devices(Plan(finetunes=(spec,)), "local")  # a fine-tune runs in this process
    job = prepare_job(spec, paths)
    record = execute(spec, job.folder, checkpoints=paths.checkpoints, cache=paths.cache, force=args.force)
    print(json.dumps({k: record.get(k) for k in ("adapter_id", "recipe_name", "method", "steps", "first_loss",
                                                 "final_loss", "wall_time_s", "samples_per_s")}))
    return 0


def cmd_bench(args) -> int:
    from harness.orchestrate import BenchOptions, bench

    request = _request(args, () if args.all else tuple(_split_names(args.model)),
                       tuple(_split_names(args.variant)) or ("base", "finetuned"))
    options = BenchOptions(runner=args.runner, force=args.force, dry_run=args.dry_run, json=args.json,
                           no_finetune=args.no_finetune, leaderboard=not args.no_leaderboard,
                           address=args.address, shards=args.shards)
    return bench(request, _paths(args), options)


def cmd_execute(args) -> int:
    from harness.execute import execute_folder

    paths = _paths(args)
    execute_folder(Path(args.folder), checkpoints=paths.checkpoints, cache=paths.cache, force=args.force)
    return 0


def _split_names(values: list[str] | None) -> list[str]:
    """--model a --model b,c -> [a, b, c] (repeatable or comma-separated)."""
    return [part.strip() for value in values or [] for part in value.split(",") if part.strip()]


def _has_runs(folder: Path) -> bool:
    return folder.is_dir() and any(folder.glob("*/result.json"))  # the rule of harness.store.load_results


def _preset_with_runs(args) -> str | None:
    """With no --results, --preset (or their env) and no runs in the default folder: the one preset whose
    declared results folder holds runs, so runs made with `--preset smoke` are found without it."""
    from harness.plan import ENV_PATHS, resolve_paths
    from harness.registry import list_presets, load_preset

    if getattr(args, "results", None) or _preset(args) or os.environ.get(ENV_PATHS["results"]):
        return None
    default = resolve_paths(None).results
    if _has_runs(default):
        return None
    found = {name: resolve_paths(load_preset(name)).results for name in list_presets()}
    found = {name: folder for name, folder in found.items() if _has_runs(folder)}
    if len(found) > 1:
        where = ", ".join(f"{folder} (preset {name})" for name, folder in found.items())
        raise HarnessError(f"no runs in {default}, but runs in several presets' folders: {where}; "
                           "pass --preset NAME or --results FOLDER")
    for name, folder in found.items():
        print(f"no runs in {default}: using {folder}, the results folder of preset {name} "
              "(--preset or --results to choose another)", file=sys.stderr)
        return name
    return None


def _load_run_in(load_run, run: str, folders: list[Path]):
    """The run (a path, or an id under the first of `folders` that holds it): --results is repeatable."""
    for folder in folders[:-1]:
        try:
            return load_run(run, folder)
        except HarnessError:
            continue
    return load_run(run, folders[-1])  # the last folder's error names what was searched for


def _two_runs(args) -> tuple:
    """(result_a, samples_a, result_b, samples_b) of RUN_A / RUN_B: folders, or run ids in --results / the preset's."""
    from harness.analysis import load_run

    if not (Path(args.run_a).exists() and Path(args.run_b).exists()):  # run ids: find their folder
        args.preset = _preset_with_runs(args) or args.preset
    folders = [Path(d) for d in args.results or []] or [_paths(args).results]
    return (*_load_run_in(load_run, args.run_a, folders), *_load_run_in(load_run, args.run_b, folders))


def cmd_explain(args) -> int:
    from harness.analysis import explain_pair

    result_a, samples_a, result_b, samples_b = _two_runs(args)
    explanation = explain_pair(result_a, result_b, samples_a, samples_b, basis=args.basis)
    print(json.dumps(explanation.to_dict(), indent=2, default=str) if args.json else explanation.to_markdown())
    return 0


def cmd_compare(args) -> int:
    from harness.analysis.parity import parity

    result_a, samples_a, result_b, samples_b = _two_runs(args)
    report = parity(result_a, samples_a, result_b, samples_b)
    print(json.dumps(report.to_dict(), indent=2, default=str) if args.json else "\n".join(report.lines(args.show)))
    if args.min_share is not None and report.share < args.min_share - 1e-12:
        print(f"parity FAILED: {report.identical}/{report.samples} identical predictions (share {report.share:.4f}) "
              f"is below --min-share {args.min_share:g}", file=sys.stderr)
        return 1
    return 0


def cmd_score(args) -> int:
    from harness.metrics import score_file

    aggregates = score_file(args.predictions, per_sample_out=args.per_sample)
    print(json.dumps(aggregates))
    return 0


def cmd_leaderboard(args) -> int:
    from harness.leaderboard import write_leaderboard
    from harness.plan import resolve_paths
    from harness.registry import load_preset

    found = _preset_with_runs(args)
    preset = found or _preset(args)  # --results is a list here (merge several folders), so resolve without it
    paths = resolve_paths(load_preset(preset) if preset else None, None, None, args.leaderboard)
    dirs = [Path(d) for d in args.results] if args.results else [paths.results]
    page = Path(args.leaderboard) if args.leaderboard else paths.leaderboard
    # An empty page must not replace a real one; a missing --results folder keeps its own message.
    if not any(_has_runs(d) for d in dirs) and not (args.results and not all(d.is_dir() for d in dirs)):
        searched = "" if args.results or preset else " nor in any preset's results folder"
        raise HarnessError(f"no finished runs in {', '.join(map(str, dirs))}{searched}; {page} not written")
    out = write_leaderboard(dirs, page, n_resamples=args.resamples, seed=args.seed)
    print(f"wrote {out}")
    return 0


def cmd_doctor(args) -> int:
    from harness.doctor import doctor_lines

    lines, ok = doctor_lines(_split_names(args.model))
    for line in lines:
        print(line)
    return 0 if ok else 1


def cmd_check_batch_invariance(args) -> int:
    from dataclasses import replace

    from harness.checks.batch_invariance import run_check, verdict
    from harness.orchestrate import BenchOptions

    if not 0 <= args.tolerance < 1:
        raise HarnessError(f"--tolerance {args.tolerance}: a share of predictions allowed to differ, in [0, 1)")
    request = replace(_request(args, tuple(_split_names(args.model)),
                               tuple(_split_names(args.variant)) or ("base", "finetuned")), limit=args.limit)
    options = BenchOptions(runner=args.runner, force=args.force, no_finetune=args.no_finetune, leaderboard=False)
    reports, problems = run_check(request, args.batch_size, _paths(args), options)
    for report in reports:
        print("\n".join(report.lines(args.show)))
    failures = problems + verdict(reports, args.tolerance)
    for line in failures:
        print(line)
    if not failures:
        print(f"batch invariance OK: {len(reports)} model variant(s), every share of identical predictions "
              f">= {1 - args.tolerance:.4f} (--tolerance {args.tolerance:g})")
    return 1 if failures else 0


def cmd_pin(args) -> int:
    from harness.pin import pin_model

    for line in pin_model(args.model, write=args.write):
        print(line)
    return 0


def _add_runtime(p: argparse.ArgumentParser) -> None:
    """Flags of where and how loudly work runs; none changes a number, so none is in a spec or its hash."""
    p.add_argument("--threads", type=int, metavar="N",
                   help="CPU threads of each run (torch in process; OMP/MKL and HARNESS_THREADS in a container); "
                        "recorded as torch_threads in the manifest, not part of the run id (default: torch's)")
    p.add_argument("--verbose", action="store_true",
                   help="also show third-party output (progress bars, library warnings) on the terminal; it "
                        "always goes to the run's log.txt")


class _DeprecatedAlias(argparse.Action):
    """A flag's old spelling: stores into the new one and says so once."""

    def __call__(self, parser, namespace, values, option_string=None):
        new = self.metavar_new
        print(f"warning: {option_string} is deprecated, use {new} (same meaning)", file=sys.stderr)
        setattr(namespace, self.dest, values)


def _alias(new: str):
    return type("_Alias", (_DeprecatedAlias,), {"metavar_new": new})


def _add_unpinned(p: argparse.ArgumentParser) -> None:
    p.add_argument("--allow-unpinned-code", action="store_true",
                   help="run a model's remote code (trust_remote_code) at a tag or branch instead of a commit "
                        "hash (refused by default; recorded in the spec as unpinned_remote_code); `harness pin "
                        "MODEL --write` pins the card instead")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="harness", description=__doc__)
    parser.add_argument("--version", action="version", version=f"harness {__version__}",
                        help="print the harness version and exit")
    parser.add_argument("--debug", action="store_true",
                        help="show the full traceback of an error instead of its one line")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("models", help="list registered models")
    fmt = p.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true",
                     help="one JSON record per card: name, family, image, pins, supports, published (for scripts)")
    fmt.add_argument("--markdown", action="store_true",
                     help="the README's model table (published scores, what each card supports)")
    p.set_defaults(func=cmd_models)

    data = sub.add_parser("data", help="make or rebuild data sets").add_subparsers(dest="data_command", required=True)
    p = data.add_parser("synth", help="write a synthetic chart-QA data set (PJN_CHARTS schema)")
    p.add_argument("--out", required=True, help="folder to write the data set into")
    p.add_argument("--seed", type=int, default=0, help="seed of the charts and questions (same seed, same data)")
    p.add_argument("--train", type=int, default=1200, help="samples in the train split")
    p.add_argument("--val", type=int, default=500, help="samples in the val split")
    p.add_argument("--test", type=int, default=500, help="samples in the test split")
    p.set_defaults(func=cmd_data_synth)
    p = data.add_parser("build", help="rebuild PJN_CHARTS from HuggingFaceM4/ChartQA (needs hub access)")
    p.add_argument("--out", required=True, help="folder to write the rebuilt data set into")
    p.add_argument("--source", default="HuggingFaceM4/ChartQA", help="hub id of the source data set")
    p.add_argument("--revision", help="pinned revision (commit) of the source (default: its main branch)")
    p.add_argument("--seed", type=int, default=42, help="seed of the split shuffle")
    p.set_defaults(func=cmd_data_build)
    p = data.add_parser("check", help="validate a data set against a benchmark card without loading a model: "
                                      "splits, rows, image sizes, subsets, first problems (exit 1 on any)")
    p.add_argument("source", help="local folder (save_to_disk, parquet, image folder with metadata.jsonl/csv), "
                                  "a JSONL/CSV file of rows, or a hub id")
    p.add_argument("--benchmark", help="benchmark card whose columns/label_shape/subsets apply (default: chartqa)")
    p.add_argument("--split", help="check this split only (default: every split the layout holds)")
    p.set_defaults(func=cmd_data_check)

    p = sub.add_parser("finetune", help="fine-tune one model (resumes when rerun)")
    p.add_argument("model", help="model name (`harness models` lists them)")
    _add_paths(p)
    p.add_argument("--benchmark", default="chartqa", help="benchmark card whose data format and prompt apply")
    p.add_argument("--dataset", help="hub id or local folder (save_to_disk or parquet)")
    p.add_argument("--epochs", type=int, help="passes over the train split (default: the recipe's)")
    p.add_argument("--max-steps", type=int, help="stop after N optimizer steps (default: the recipe's)")
    p.add_argument("--batch-size", type=int, help="samples per step before accumulation (default: the recipe's)")
    p.add_argument("--grad-accum", type=int, help="batches accumulated per optimizer step (default: the recipe's)")
    p.add_argument("--lr", type=float, help="peak learning rate (default: the recipe's)")
    p.add_argument("--method", choices=["lora", "qlora", "full"], help="what is trained (default: the recipe's)")
    p.add_argument("--limit", type=int, help="train on the first N samples only")
    p.add_argument("--seed", type=int, default=0, help="seed of data order and adapter initialisation")
    p.add_argument("--device", help="cpu, cuda, cuda:1 (default: preset, else cuda if present)")
    p.add_argument("--dtype", choices=["float32", "float16", "bfloat16"], help="default: preset, else the card's")
    p.add_argument("--force", action="store_true", help="redo the fine-tune even if it is complete")
    p.add_argument("--dry-run", action="store_true", help="print the planned fine-tune and its id; run nothing")
    p.add_argument("--json", action="store_true", help="with --dry-run: the full spec as JSON")
    _add_recipe(p)
    _add_prompt(p)
    _add_overrides(p, decoding=False)
    _add_unpinned(p)
    _add_runtime(p)
    p.set_defaults(func=cmd_finetune)

    p = sub.add_parser("bench", help="benchmark base and fine-tuned variants, then render the leaderboard")
    group = p.add_mutually_exclusive_group(required=True)
    group.add_argument("--all", action="store_true", help="every registered model")
    group.add_argument("--model", action="append", help="model name (repeatable or comma-separated)")
    p.add_argument("--variant", action="append",
                   help="base, finetuned or study (repeatable or comma-separated; default: base,finetuned)")
    _add_paths(p, leaderboard=True)
    p.add_argument("--benchmark", default="chartqa", help="benchmark card from benchmarks/")
    p.add_argument("--dataset", help="hub id or local folder (save_to_disk or parquet)")
    p.add_argument("--dataset-revision", help="pinned revision (commit) of a hub dataset")
    p.add_argument("--split", help="data split to bench (default: the benchmark's); checked before any "
                                   "work for synthetic and local data sets")
    p.add_argument("--limit", type=int, help="bench the first N samples only (fine-tunes still use the whole "
                                             "train split); limited runs are kept apart from full ones")
    p.add_argument("--batch-size", type=_batch_sizes, default=None, help="one size or a sweep: 1,4,8 "
                                                                        "(default: 8)")
    p.add_argument("--seed", type=int, default=0, help="seed of sampling and fine-tunes (part of the run id)")
    p.add_argument("--device", help="cpu, cuda, cuda:1 (default: preset, else cuda if present); cuda "
                                    "without an NVIDIA GPU here is refused before any work")
    p.add_argument("--dtype", choices=["float32", "float16", "bfloat16"], help="default: preset, else the card's")
    p.add_argument("--runner", default="local", help="where specs run: local (this process), docker (the "
                                                      "model's pinned image), ray (tasks on a Ray cluster) or "
                                                      "venv (local, but a backend's specs in its own Python)")
    p.add_argument("--address", help="--runner ray: the cluster to use (default: RAY_ADDRESS, else a local Ray)")
    p.add_argument("--shards", type=int, default=1, help="--runner ray: split each run into N shards by sample id "
                                                         "(one task each; merged into one result)")
    p.add_argument("--merge-adapter", action="store_true",
                   help="fold LoRA adapters into the base weights before timing (recorded as adapter_merged)")
    p.add_argument("--backend", choices=["transformers", "vllm"], default="transformers",
                   help="inference engine: transformers generate, or vLLM (its own environment: scripts/vllm-env.sh "
                        "and --runner venv, or its image harness-vllm with --runner docker); part of the run id")
    p.add_argument("--no-finetune", action="store_true", help="fail instead of fine-tuning missing variants")
    _add_recipe(p)
    _add_prompt(p)
    _add_overrides(p, decoding=True)
    p.add_argument("--force", action="store_true", help="redo finished fine-tunes and runs")
    p.add_argument("--dry-run", action="store_true", help="print the plan (fine-tunes and runs with their ids); "
                                                          "run nothing")
    p.add_argument("--json", action="store_true", help="with --dry-run: the full specs as JSON")
    p.add_argument("--no-leaderboard", action="store_true", help="do not render the leaderboard after the runs")
    _add_unpinned(p)
    _add_runtime(p)
    p.set_defaults(func=cmd_bench)

    p = sub.add_parser("pin", help="resolve a card's tag or branch (and its study checkpoint's) to the commit "
                                   "hash it points to now, through the hub API (needs hub access; HF_TOKEN)")
    p.add_argument("model", help="model name (models/MODEL.yaml)")
    p.add_argument("--write", action="store_true", help="rewrite the card's revision lines with the commits "
                                                        "(comments kept)")
    p.set_defaults(func=cmd_pin)

    p = sub.add_parser("execute", help="run exactly one planned spec (FOLDER/spec.json) into FOLDER: the worker "
                                       "every runner ends in")
    p.add_argument("folder", help="a run or fine-tune folder holding spec.json (or the spec.json itself)")
    p.add_argument("--checkpoints", help="where fine-tunes live (env HARNESS_CHECKPOINTS_DIR)")
    p.add_argument("--force", action="store_true", help="redo a finished fine-tune")
    _add_runtime(p)
    p.set_defaults(func=cmd_execute, preset=None, results=None)

    p = sub.add_parser("doctor", help="check installed packages against a model card's pinned environment")
    p.add_argument("model", nargs="+", help="model name(s), space- or comma-separated; one line per unmet pin, "
                                            "exit 1 if any")
    p.set_defaults(func=cmd_doctor)

    p = sub.add_parser("explain", help="why is run B slower than run A: the latency difference by cause")
    p.add_argument("run_a", help="reference run: a run folder or a result.json (relative or absolute path), or a "
                                 "run id (prefix) under --results")
    p.add_argument("run_b", help="compared run, same forms")
    p.add_argument("--preset", help="named overrides from presets/ (for the default results folder); without "
                                    "it, a preset's results folder is used when the default has no runs")
    p.add_argument("--results", action="append", help="results folder for run ids (repeatable: searched in "
                                                      "order; env HARNESS_RESULTS_DIR; default per preset)")
    p.add_argument("--basis", choices=["auto", "batch", "sample"], default="auto",
                   help="compare per batch or per sample (auto: per batch when the batch sizes match)")
    p.add_argument("--json", action="store_true", help="print the explanation as JSON")
    p.set_defaults(func=cmd_explain)

    p = sub.add_parser("compare", help="parity of two runs of the same questions (e.g. two backends, batch 1 vs "
                                       "8, local vs docker): identical predictions, metric deltas with paired "
                                       "tests, disagreeing samples")
    p.add_argument("run_a", help="reference run: a run folder, a result.json, or a run id (prefix) under --results")
    p.add_argument("run_b", help="compared run, same forms")
    p.add_argument("--preset", help="named overrides from presets/ (for the default results folder)")
    p.add_argument("--results", action="append", help="results folder for run ids (repeatable; env "
                                                      "HARNESS_RESULTS_DIR; default per preset)")
    p.add_argument("--show", type=int, default=5, help="disagreeing samples to print (default 5)")
    p.add_argument("--min-share", type=float, metavar="S",
                   help="exit 1 when the share of identical predictions is below S (e.g. 1.0 in CI)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(func=cmd_compare)

    p = sub.add_parser("score", help="re-score stored predictions (JSONL with prediction, references)")
    p.add_argument("predictions", help="JSONL file, one {prediction, references} object a line")
    p.add_argument("--per-sample", metavar="FILE",
                   help="write each line with its scores added to this JSONL file (a file path, not a folder)")
    p.set_defaults(func=cmd_score)

    p = sub.add_parser("leaderboard", help="render the leaderboard from stored results")
    p.add_argument("--preset", help="named overrides from presets/ (for the default folders); env HARNESS_PRESET; "
                                    "without it, a preset's results folder is used when the default has no runs")
    p.add_argument("--results", action="append", help="results folder (repeatable: merges several; default per "
                                                      "preset)")
    p.add_argument("--leaderboard", dest="leaderboard",
                   help="Markdown page to write, with index.html, leaderboard.json and assets/ next to it; an "
                        "existing folder gets LEADERBOARD.md inside it (default per preset)")
    p.add_argument("--out", dest="leaderboard", action=_alias("--leaderboard"), help="deprecated: --leaderboard")
    p.add_argument("--resamples", type=int, default=2000, help="bootstrap resamples for intervals and tests")
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed (same seed, same numbers)")
    p.set_defaults(func=cmd_leaderboard)

    check = sub.add_parser("check", help="checks on stored runs that must hold").add_subparsers(
        dest="check_command", required=True)
    p = check.add_parser("batch-invariance", help="bench the same questions at batch size 1 and N (ordinary "
                                                  "stored runs, reused when finished) and compare predictions "
                                                  "by sample id; exit 1 when too many differ")
    p.add_argument("model", nargs="+", help="model name(s) (repeatable or comma-separated)")
    p.add_argument("--batch-size", type=int, default=8, help="the batch size compared with 1 (default: 8)")
    p.add_argument("--variant", action="append",
                   help="base, finetuned or study (repeatable or comma-separated; default: base,finetuned)")
    p.add_argument("--limit", type=int, help="compare the first N samples only (default: the whole split, "
                                             "the same runs `harness bench` makes)")
    p.add_argument("--tolerance", type=float, default=0.0,
                   help="share of predictions allowed to differ (default: 0, every prediction identical)")
    p.add_argument("--show", type=int, default=3, help="disagreeing samples printed per variant (default: 3)")
    _add_paths(p)
    p.add_argument("--benchmark", default="chartqa", help="benchmark card from benchmarks/ (default: chartqa)")
    p.add_argument("--dataset", help="hub id or local folder (save_to_disk or parquet)")
    p.add_argument("--split", help="data split (default: the benchmark's)")
    p.add_argument("--seed", type=int, default=0, help="seed (default: 0)")
    p.add_argument("--device", help="cpu, cuda, cuda:1 (default: preset, else cuda if present)")
    p.add_argument("--dtype", choices=["float32", "float16", "bfloat16"], help="default: preset, else the card's")
    p.add_argument("--runner", default="local", help="where specs run: local (default) or docker")
    p.add_argument("--no-finetune", action="store_true", help="fail instead of fine-tuning missing variants")
    _add_recipe(p)
    _add_prompt(p)
    _add_overrides(p, decoding=True)
    p.add_argument("--force", action="store_true", help="redo finished fine-tunes and runs")
    _add_runtime(p)
    p.set_defaults(func=cmd_check_batch_invariance)
    return parser


def _runtime_env(args) -> None:
    """--threads / --verbose as environment: the worker reads them in process, the docker runner passes them on."""
    from harness.runlog import THREADS_ENV, VERBOSE_ENV

    threads = getattr(args, "threads", None)
    if threads is not None:
        if threads < 1:
            raise HarnessError(f"--threads {threads}: a positive number of CPU threads")
        os.environ[THREADS_ENV] = str(threads)
    if getattr(args, "verbose", False):
        os.environ[VERBOSE_ENV] = "1"
    if getattr(args, "debug", False):
        from harness.runners.base import DEBUG_ENV

        os.environ[DEBUG_ENV] = "1"


def main(argv: list[str] | None = None) -> int:
    from harness.runlog import redact

    args = build_parser().parse_args(argv)
    try:
        _runtime_env(args)
        return args.func(args)
    except HarnessError as exc:
        if args.debug:
            raise
        print(f"error: {redact(_one_line(exc))}", file=sys.stderr)  # a message may quote a URL or the token
        return 2
    except KeyboardInterrupt:
        print("interrupted: rerun the same command to resume", file=sys.stderr)
        return 130
    except Exception as exc:  # a bug or an unforeseen input: still one line, the traceback on request
        if args.debug:
            raise
        print(f"error: {type(exc).__name__}: {redact(_one_line(exc))} (rerun with --debug for the traceback)",
              file=sys.stderr)
        return 2


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text or type(exc).__name__


if __name__ == "__main__":
    sys.exit(main())
