"""`harness bench`: plan, hand the specs to a runner, account for every outcome, render the leaderboard.

Skip-if-finished and failure accounting live here once, for every runner: fine-tunes run first, a run
whose fine-tune failed is skipped with the reason, a finished run is reused only when it was measured
on the same hardware with the same library versions, and the page is rendered from what finished.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from harness.errors import HarnessError
from harness.fileio import read_json, write_json_atomic
from harness.plan import BenchRequest, Paths, Plan, check_devices, plan
from harness.progress import log
from harness.runners.base import FAILED, FINISHED, SKIPPED, Job, Outcome, get_runner
from harness.specs import FinetuneSpec, RunSpec

__all__ = ["BenchOptions", "bench", "execute_plan", "plan_table", "prepare_job", "results_table", "reuse_mismatch"]


@dataclass(frozen=True)
class BenchOptions:
    """How to execute a plan (nothing here changes a number, so nothing here is in a spec)."""

    runner: str = "local"
    force: bool = False  # redo finished fine-tunes and runs
    dry_run: bool = False
    json: bool = False  # with dry_run: the plan as JSON
    no_finetune: bool = False
    leaderboard: bool = True
    address: str | None = None  # --runner ray: the cluster (else RAY_ADDRESS, else a local one)
    shards: int = 1  # --runner ray: data-parallel shards per run (harness/shards.py)


def plan_table(p: Plan) -> str:
    from tabulate import tabulate

    rows = [["finetune", f.model, "–", "–", f.recipe_name, f.adapter_id] for f in p.finetunes]
    rows += [["run", r.model, r.variant, r.batch_size, r.limit or "all", r.run_id] for r in p.runs]
    return tabulate(rows, headers=["kind", "model", "variant", "batch", "recipe / limit", "id"], tablefmt="github")


def results_table(results: list[dict]) -> str:
    """What `harness bench` ends with on stdout: one row per finished run, each column naming its unit."""
    from tabulate import tabulate

    def num(value, scale=1.0, digits=1):
        return "–" if value is None else f"{value * scale:.{digits}f}"

    rows = []
    for r in sorted(results, key=lambda r: (r["spec"]["model"], r["spec"]["variant"], r["spec"]["batch_size"])):
        metrics, lat = r.get("metrics") or {}, r.get("latency") or {}
        rows.append([r["spec"]["model"], r["spec"]["variant"], r["spec"]["batch_size"], r.get("num_samples"),
                     num(metrics.get("relaxed_accuracy"), 100), num(metrics.get("rougeL"), digits=3),
                     num((lat.get("latency_ms") or {}).get("p50")), num(lat.get("samples_per_s"), digits=2)])
    return tabulate(rows, headers=["model", "variant", "batch", "n (samples)", "relaxed acc (%)", "ROUGE-L (0-1)",
                                   "p50 latency (ms)", "samples/s"], tablefmt="github", disable_numparse=True)


def _plan_json(p: Plan) -> str:
    return json.dumps({"finetunes": [f.record() for f in p.finetunes], "runs": [r.record() for r in p.runs],
                       "skipped": list(p.skipped)}, indent=2, sort_keys=True, default=str)


def _host_facts(device: str) -> dict:
    from importlib import metadata

    from harness.manifest import host_hardware

    facts = {"hardware": host_hardware(device)}
    for name in ("torch", "transformers", "peft"):
        try:
            facts[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            facts[name] = None
    return facts


def reuse_mismatch(result: dict, runner: str) -> str | None:
    """Why a finished run cannot stand for a run here (other hardware or library versions), or None."""
    manifest = result.get("manifest") or {}
    spec = result.get("spec") or {}
    here = _host_facts(spec.get("device", "cpu"))
    diffs = []
    if manifest.get("hardware") and manifest["hardware"] != here["hardware"]:
        diffs.append(f"hardware {manifest['hardware']} vs {here['hardware']} here")
    if runner == "local":  # in a container the image's versions count, and the image is pinned by its lock
        stored = manifest.get("packages") or {}
        diffs += [f"{name} {stored[name]} vs {here[name]} here" for name in ("torch", "transformers", "peft")
                  if stored.get(name) and here[name] and stored[name] != here[name]]
    return "; ".join(diffs) or None


def prepare_job(spec: FinetuneSpec | RunSpec, paths: Paths) -> Job:
    """The job's folder with spec.json written first (an existing one must be the same spec)."""
    folder = paths.finetune_dir(spec.adapter_id) if isinstance(spec, FinetuneSpec) else paths.run_dir(spec.run_id)
    path = folder / "spec.json"
    if path.exists():
        old = read_json(path)
        if old.get("config_hash") != spec.config_hash:
            raise HarnessError(f"{path}: belongs to another configuration; remove the folder")
    else:
        write_json_atomic(path, spec.record())
    return Job(spec, folder, paths.checkpoints, paths.cache)


def _finished(job: Job) -> dict | None:
    """The job's finished record, if its folder holds one of exactly this spec."""
    from harness.store import output_file, output_mismatch

    return None if output_mismatch(job.folder, job.spec) else read_json(output_file(job.folder, job.spec))


def _report(outcome: Outcome, outcomes: list[Outcome]) -> None:
    """One line per job that did not finish; its log tail only for what that line does not already say."""
    outcomes.append(outcome)
    if outcome.status != FINISHED:
        text = outcome.line()
        log(text)
        for line in outcome.log_tail[-5:]:
            if line.strip() and line.strip().removeprefix("error: ") not in text:
                log(f"  | {line}")


def execute_plan(p: Plan, paths: Paths, options: BenchOptions) -> list[Outcome]:
    check_devices(p, options.runner)  # before any job folder is written
    if options.shards != 1 and options.runner != "ray":
        raise HarnessError(f"--shards {options.shards}: only --runner ray splits a run into shards")
    runner = get_runner(options.runner, force=options.force, address=options.address, shards=options.shards)
    outcomes: list[Outcome] = []
    jobs = []
    for fspec in p.finetunes:
        job = prepare_job(fspec, paths)
        if _finished(job) and not options.force:
            log(f"{fspec.model}: fine-tune {fspec.adapter_id} already complete in {job.folder}")
            outcomes.append(Outcome(job.id, job.kind, FINISHED, "already complete", job.folder))
            continue
        if options.no_finetune:
            _report(Outcome(job.id, job.kind, FAILED, "fine-tune missing and --no-finetune given"), outcomes)
            continue
        log(f"{fspec.model}: fine-tune {fspec.adapter_id} ({fspec.recipe_name} recipe) missing, fine-tuning first")
        jobs.append(job)
    ready = {o.job_id for o in outcomes if o.kind == "finetune" and o.ok} | {job.id for job in jobs}
    for spec in p.runs:
        if spec.needs and spec.needs not in ready:
            _report(Outcome(spec.run_id, "run", SKIPPED, f"its fine-tune {spec.needs} did not finish"), outcomes)
            continue
        job = prepare_job(spec, paths)
        done = _finished(job)
        if done and not options.force:
            mismatch = reuse_mismatch(done, options.runner)
            if mismatch is None:
                log(f"{spec.run_id}: already finished, skipped")
                outcomes.append(Outcome(job.id, job.kind, FINISHED, "already finished", job.folder))
                continue
            _report(Outcome(job.id, job.kind, FAILED, f"{job.folder} was measured elsewhere ({mismatch}): bench "
                            "into another --results folder to measure here, or --force to replace it"), outcomes)
            continue
        jobs.append(job)
    # One submission: a run waits only for its own fine-tune, and is skipped if that one did not finish
    # (runners/base.py JobGraph, which every runner schedules through).
    for outcome in runner.submit(jobs):
        _report(outcome, outcomes)
    return outcomes


def bench(request: BenchRequest, paths: Paths, options: BenchOptions) -> int:
    p = plan(request)
    for line in p.skipped:
        log(line)
    if options.dry_run:
        print(_plan_json(p) if options.json else plan_table(p))
        return 0
    if request.limit and p.finetunes:
        log(f"--limit {request.limit} applies to the bench only: fine-tunes train on the whole train split "
            "(shorten one with --set finetune.limit=N or --set finetune.max_steps=N)")
    from harness.runlog import run_log

    check_devices(p, options.runner)  # refused before anything is written, the session log included
    if not (p.finetunes or p.runs):  # nothing to run: nothing written
        return _bench(request, p, paths, options)
    # The session's log (every harness line and, outside the runs' own log.txt, third-party output).
    with run_log(paths.results / "logs" / f"session-{_stamp()}.txt"):
        return _bench(request, p, paths, options)


def _stamp() -> str:
    from datetime import datetime, timezone

    return datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")


def _bench(request: BenchRequest, p: Plan, paths: Paths, options: BenchOptions) -> int:
    outcomes = execute_plan(p, paths, options)
    failed = [o for o in outcomes if o.status == FAILED]
    finished = [o for o in outcomes if o.kind == "run" and o.ok]
    if len(set(request.batch_sizes)) > 1 and finished:
        from harness.engine.sweep import sweep_table

        results = [read_json(o.folder / "result.json") for o in finished]
        log("batch-size sweep (★ = best samples/s per model variant):\n" + sweep_table(results))
    if not p.runs:
        log("nothing to run for these models and variants")
    if options.leaderboard and paths.results.is_dir() and any(paths.results.glob("*/result.json")):
        from harness.leaderboard import write_leaderboard

        out = write_leaderboard([paths.results], paths.leaderboard)
        log(f"leaderboard written to {out}")
    elif options.leaderboard and not failed:  # after a failure, its line above says why: say it once
        log(f"leaderboard not written: no finished runs in {paths.results} yet")
    skipped = sum(o.status == SKIPPED for o in outcomes)
    log(f"runs: {len(finished)} finished" + (f", {skipped} skipped (above)" if skipped else "")
        + (f", {len(failed)} FAILED (above)" if failed else ""))
    records = [o.folder / "result.json" for o in finished if o.folder]
    records = [read_json(path) for path in records if path.is_file()]  # a runner's record, when it left one
    if records:  # the numbers themselves, on stdout (the log lines above are on stderr)
        print(results_table(records))
    return 1 if failed else 0
