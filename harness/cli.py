"""Command line: parse arguments and call one function per verb. No torch at import time."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from harness.errors import HarnessError

__all__ = ["main"]


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
        p.add_argument("--leaderboard", help="Markdown page to write (default per preset)")


def _add_recipe(p: argparse.ArgumentParser) -> None:
    from harness.specs import DEFAULT_RECIPE

    p.add_argument("--recipe", default=DEFAULT_RECIPE,
                   help="the card's named fine-tune recipe: official (default) or study (the original study's "
                        "settings); `harness models` lists them")


def _paths(args):
    from harness.plan import resolve_paths
    from harness.registry import load_preset

    preset = _preset(args)
    return resolve_paths(load_preset(preset) if preset else None, getattr(args, "results", None),
                         getattr(args, "checkpoints", None), getattr(args, "leaderboard", None))


def cmd_models(args) -> int:
    from tabulate import tabulate

    from harness.registry import list_models

    rows = [[c.name, c.display_name, c.hub_id, c.revision[:12], c.adapter.split(":")[-1],
             ", ".join(f"{k}{v}" for k, v in c.environment.items()),
             c.twin.get("builder", "–").split(":")[0].rsplit(".", 1)[-1] + " twin" if c.twin else "–",
             c.study.get("hub_id", "–") if c.study else "–",
             ", ".join(c.recipes) if c.recipes else ("official" if c.finetune else "–")] for c in list_models()]
    print(tabulate(rows, headers=["name", "model", "hub id", "revision", "adapter", "pinned environment",
                                  "offline twin", "study checkpoint", "recipes (--recipe)"], tablefmt="github"))
    return 0


def cmd_data_synth(args) -> int:
    from harness.data import write_synthetic

    sizes = {"train": args.train, "val": args.val, "test": args.test}
    out = write_synthetic(args.out, sizes=sizes, seed=args.seed)
    print(f"wrote synthetic chart QA ({sizes}, seed {args.seed}) to {out}")
    return 0


def cmd_data_build(args) -> int:
    from harness.data import build_pjn_charts

    out = build_pjn_charts(args.out, source=args.source, seed=args.seed, revision=args.revision)
    print(f"rebuilt PJN_CHARTS from {args.source} into {out}")
    return 0


def _overrides(args) -> dict:
    out: dict = {}
    for key in ("epochs", "max_steps", "batch_size", "grad_accum", "lr", "method", "limit"):
        value = getattr(args, key, None)
        if value is not None:
            out[key] = value
    return out


def cmd_finetune(args) -> int:
    from harness.plan import finetune_spec
    from harness.runners.local import execute_finetune

    spec = finetune_spec(args.model, preset_name=_preset(args), dataset=args.dataset, overrides=_overrides(args),
                         seed=args.seed, device=args.device, dtype=args.dtype, recipe=args.recipe)
    record = execute_finetune(spec, _paths(args), force=args.force)
    print(json.dumps({k: record.get(k) for k in ("adapter_id", "recipe_name", "method", "steps", "first_loss",
                                                 "final_loss", "wall_time_s", "samples_per_s")}))
    return 0


def cmd_bench(args) -> int:
    from harness.orchestrate import bench

    return bench(args, _preset(args), _paths(args))


def cmd_explain(args) -> int:
    from harness.analysis import explain_pair, load_run

    results = _paths(args).results
    result_a, samples_a = load_run(args.run_a, results)
    result_b, samples_b = load_run(args.run_b, results)
    explanation = explain_pair(result_a, result_b, samples_a, samples_b, basis=args.basis)
    print(json.dumps(explanation.to_dict(), indent=2, default=str) if args.json else explanation.to_markdown())
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

    preset = _preset(args)  # --results is a list here (merge several folders), so resolve without it
    paths = resolve_paths(load_preset(preset) if preset else None, None, None, args.leaderboard)
    dirs = [Path(d) for d in args.results] if args.results else [paths.results]
    out = write_leaderboard(dirs, Path(args.leaderboard) if args.leaderboard else paths.leaderboard,
                            n_resamples=args.resamples, seed=args.seed)
    print(f"wrote {out}")
    return 0


def cmd_doctor(args) -> int:
    from harness.doctor import doctor_lines

    lines, ok = doctor_lines(args.model)
    for line in lines:
        print(line)
    return 0 if ok else 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="harness", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("models", help="list registered models")
    p.set_defaults(func=cmd_models)

    data = sub.add_parser("data", help="make or rebuild data sets").add_subparsers(dest="data_command", required=True)
    p = data.add_parser("synth", help="write a synthetic chart-QA data set (PJN_CHARTS schema)")
    p.add_argument("--out", required=True)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--train", type=int, default=1200)
    p.add_argument("--val", type=int, default=500)
    p.add_argument("--test", type=int, default=500)
    p.set_defaults(func=cmd_data_synth)
    p = data.add_parser("build", help="rebuild PJN_CHARTS from HuggingFaceM4/ChartQA (needs hub access)")
    p.add_argument("--out", required=True)
    p.add_argument("--source", default="HuggingFaceM4/ChartQA")
    p.add_argument("--revision")
    p.add_argument("--seed", type=int, default=42)
    p.set_defaults(func=cmd_data_build)

    p = sub.add_parser("finetune", help="fine-tune one model (resumes when rerun)")
    p.add_argument("model")
    _add_paths(p)
    p.add_argument("--dataset", help="hub id or local folder (save_to_disk or parquet)")
    p.add_argument("--epochs", type=int)
    p.add_argument("--max-steps", type=int)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--grad-accum", type=int)
    p.add_argument("--lr", type=float)
    p.add_argument("--method", choices=["lora", "qlora", "full"])
    p.add_argument("--limit", type=int, help="train on the first N samples only")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", help="cpu, cuda, cuda:1 (default: preset, else cuda if present)")
    p.add_argument("--dtype", choices=["float32", "float16", "bfloat16"])
    p.add_argument("--force", action="store_true", help="replace an existing fine-tune with another config")
    _add_recipe(p)
    p.set_defaults(func=cmd_finetune)

    p = sub.add_parser("bench", help="benchmark base and fine-tuned variants, then render the leaderboard")
    group = p.add_mutually_exclusive_group(required=True)
    group.add_argument("--all", action="store_true", help="every registered model")
    group.add_argument("--model", action="append", help="model name (repeatable)")
    p.add_argument("--variant", action="append", choices=["base", "finetuned", "study"],
                   help="default: base and finetuned")
    _add_paths(p, leaderboard=True)
    p.add_argument("--benchmark", default="chartqa")
    p.add_argument("--dataset", help="hub id or local folder (save_to_disk or parquet)")
    p.add_argument("--split")
    p.add_argument("--limit", type=int)
    p.add_argument("--batch-size", type=_batch_sizes, default=None, help="one size or a sweep: 1,4,8")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device")
    p.add_argument("--dtype", choices=["float32", "float16", "bfloat16"])
    p.add_argument("--runner", choices=["local", "docker"], default="local")
    p.add_argument("--merge-adapter", action="store_true",
                   help="fold LoRA adapters into the base weights before timing (recorded as adapter_merged)")
    p.add_argument("--no-finetune", action="store_true", help="fail instead of fine-tuning missing variants")
    _add_recipe(p)
    p.add_argument("--no-leaderboard", action="store_true")
    p.set_defaults(func=cmd_bench)

    p = sub.add_parser("doctor", help="check installed packages against a model card's pinned environment")
    p.add_argument("model", nargs="+", help="model name(s); one line per unmet pin, exit 1 if any")
    p.set_defaults(func=cmd_doctor)

    p = sub.add_parser("explain", help="why is run B slower than run A: the latency difference by cause")
    p.add_argument("run_a", help="reference run: a run folder, a result.json, or a run id (prefix) under --results")
    p.add_argument("run_b", help="compared run, same forms")
    p.add_argument("--preset", help="named overrides from presets/ (for the default results folder)")
    p.add_argument("--results", help="results folder for run ids (env HARNESS_RESULTS_DIR; default per preset)")
    p.add_argument("--basis", choices=["auto", "batch", "sample"], default="auto",
                   help="compare per batch or per sample (auto: per batch when the batch sizes match)")
    p.add_argument("--json", action="store_true", help="print the explanation as JSON")
    p.set_defaults(func=cmd_explain)

    p = sub.add_parser("score", help="re-score stored predictions (JSONL with prediction, references)")
    p.add_argument("predictions")
    p.add_argument("--per-sample", help="write each line with its scores added")
    p.set_defaults(func=cmd_score)

    p = sub.add_parser("leaderboard", help="render the leaderboard from stored results")
    p.add_argument("--preset")
    p.add_argument("--results", action="append", help="results folder (repeatable: merges several)")
    p.add_argument("--leaderboard", "--out", dest="leaderboard", help="Markdown page to write")
    p.add_argument("--resamples", type=int, default=2000, help="bootstrap resamples for intervals and tests")
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed (same seed, same numbers)")
    p.set_defaults(func=cmd_leaderboard)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except HarnessError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: rerun the same command to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
