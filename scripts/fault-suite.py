#!/usr/bin/env python3
"""Fault-injection suite (issue 11): kill, fill the disk, run out of memory, poison the loss; then resume.

For every fault point of bench and fine-tune (harness/faults.py) the real CLI (`harness.cli.main`) runs
with `HARNESS_FAULT=KIND@POINT:N`, N drawn from --seed among the times an uninterrupted run reaches the
point, then the same command again without the fault; the folder must then hold what the uninterrupted
reference run holds: each sample once, the same predictions and metrics, the same adapter weights and loss
curve (bitwise). Each run is a fork of this warm process (imports done once, ~9 s saved per run); the
kill is a real SIGKILL of the forked child.

    python scripts/fault-suite.py [--seed 0] [--json counts.json] [--jobs 2] [--work DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

MODEL = os.environ.get("FAULT_SUITE_MODEL", "qwen2vl")  # the twin the suite runs on
BENCH = ["bench", "--model", MODEL, "--variant", "base", "--preset", "smoke", "--limit", "16", "--batch-size", "4",
         "--no-leaderboard"]
FINETUNE = ["finetune", MODEL, "--preset", "smoke", "--max-steps", "6", "--batch-size", "1", "--limit", "8",
            "--set", "finetune.save_every=1", "--set", "finetune.lora.dropout=0.1"]
BENCH_KILLS = ["bench.after_spec", "bench.before_thumbnails", "bench.thumbnail.mid", "bench.after_thumbnails",
               "bench.after_warmup", "bench.before_batch", "bench.generate", "bench.append.mid",
               "bench.after_append", "bench.before_result", "bench.result.mid", "bench.after_result"]
FINETUNE_KILLS = ["finetune.after_spec", "finetune.forward", "finetune.after_backward",
                  "finetune.after_optimizer_step", "finetune.before_checkpoint", "finetune.checkpoint.mid",
                  "finetune.after_checkpoint", "finetune.before_adapter", "finetune.adapter.mid",
                  "finetune.after_adapter", "finetune.before_record", "finetune.record.mid",
                  "finetune.after_record"]
# (command, point): a full disk there must be one line, leave the old file and resume.
ENOSPC = [("bench", "bench.append.mid"), ("bench", "bench.result.mid"),
          ("finetune", "finetune.checkpoint.mid"), ("finetune", "finetune.adapter.mid")]
KILLED = -signal.SIGKILL


def run_cli(argv: list[str], env: dict, log: Path) -> int:
    """harness.cli.main(argv) in a forked child with `env` added; its return code, or -signal."""
    pid = os.fork()
    if pid == 0:  # the child: never returns
        rc = 1
        try:
            fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            os.dup2(fd, 1)
            os.dup2(fd, 2)
            os.environ.update(env)
            import torch

            torch.set_num_threads(1)  # the same in every run, so CPU sums (and weights) are bitwise stable

            from harness import cli

            rc = cli.main(argv)
        except SystemExit as exc:
            rc = exc.code if isinstance(exc.code, int) else 1
        except BaseException:
            import traceback

            traceback.print_exc()
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(rc)
    _, status = os.waitpid(pid, 0)
    return -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)


class Case:
    """One folder pair (results, checkpoints) and the runs made in it."""

    def __init__(self, work: Path, name: str, cache: Path):
        self.name, self.dir = name, work / name
        self.env = {"HARNESS_CACHE_DIR": str(cache), "HARNESS_CONFIG_DIR": str(REPO),
                    "HARNESS_RESULTS_DIR": str(self.dir / "results"),
                    "HARNESS_CHECKPOINTS_DIR": str(self.dir / "checkpoints")}
        self.runs = 0
        shutil.rmtree(self.dir, ignore_errors=True)  # a leftover of an earlier suite in the same --work

    def run(self, argv: list[str], **extra) -> tuple[int, str]:
        self.dir.mkdir(parents=True, exist_ok=True)
        self.runs += 1
        log = self.dir / f"run{self.runs}.log"
        rc = run_cli(argv, {**self.env, **extra}, log)
        return rc, log.read_text(errors="replace")

    def run_dir(self) -> Path:
        found = list((self.dir / "results").glob("*/spec.json"))
        assert len(found) == 1, f"{self.name}: expected one run folder, found {found}"
        return found[0].parent

    def ft_dir(self) -> Path:
        found = list((self.dir / "checkpoints").glob("*/spec.json"))
        assert len(found) == 1, f"{self.name}: expected one fine-tune folder, found {found}"
        return found[0].parent


def trace_counts(path: Path) -> dict[str, int]:
    counts: dict[str, int] = {}
    for name in path.read_text().split():
        counts[name] = counts.get(name, 0) + 1
    return counts


def strict_rows(path: Path) -> list[dict]:
    """Every line of a finished samples.jsonl must parse: a torn line left behind is a failure."""
    return [json.loads(line) for line in path.read_text().splitlines()]


def bench_state(case: Case) -> dict:
    folder = case.run_dir()
    rows = strict_rows(folder / "samples.jsonl")
    result = json.loads((folder / "result.json").read_text())
    return {"ids": [r["id"] for r in rows], "predictions": {r["id"]: r["prediction"] for r in rows},
            "metrics": result["metrics"], "num_samples": result["num_samples"], "result": result}


def finetune_state(case: Case) -> dict:
    from safetensors.torch import load_file

    folder = case.ft_dir()
    record = json.loads((folder / "training.json").read_text())
    return {"loss_per_step": record["loss_per_step"], "steps": record["steps"],
            "weights": load_file(folder / "adapter" / "adapter_model.safetensors"),
            "checkpoint_left": (folder / "checkpoint").exists()}


def same_weights(a: dict, b: dict) -> bool:
    import torch

    return a.keys() == b.keys() and bool(a) and all(torch.equal(a[k], b[k]) for k in a)


def compare_bench(got: dict, ref: dict, problems: list[str]) -> tuple[int, int]:
    """(samples lost, samples duplicated) against the reference; differences go to `problems`."""
    lost = len(set(ref["ids"]) - set(got["ids"]))
    duplicated = len(got["ids"]) - len(set(got["ids"]))
    if got["predictions"] != ref["predictions"]:
        problems.append("predictions differ from the uninterrupted run")
    if got["metrics"] != ref["metrics"] or got["num_samples"] != ref["num_samples"]:
        problems.append(f"metrics differ: {got['metrics']} vs {ref['metrics']}")
    return lost, duplicated


def compare_finetune(got: dict, ref: dict, problems: list[str]) -> None:
    if got["loss_per_step"] != ref["loss_per_step"]:
        problems.append("loss_per_step differs from the uninterrupted run")
    if not same_weights(got["weights"], ref["weights"]):
        problems.append("adapter weights differ from the uninterrupted run")
    if got["checkpoint_left"]:
        problems.append("the resume checkpoint was left behind in a finished fine-tune")


def one_line_error(log: str, needle: str, problems: list[str]) -> None:
    """The failure is told once, in one line (`error: ...` from finetune, `RUN: failed: ...` from bench)."""
    lines = [line for line in log.splitlines() if needle in line]
    if "Traceback" in log or len(lines) != 1:
        problems.append(f"expected one line with {needle!r} and no traceback, got: {log.strip()[-400:]!r}")


def _checkpoint_step(case: Case) -> int | None:
    import torch

    ckpt = case.ft_dir() / "checkpoint" / "state.pt"
    return torch.load(ckpt, weights_only=False)["step"] if ckpt.exists() else None


def scenario(kind: str, command: str, point: str, n: int, work: Path, cache: Path, refs: dict) -> dict:
    """Inject KIND@POINT:N into COMMAND, check how it ended, resume, compare with the reference."""
    argv = BENCH if command == "bench" else FINETUNE
    case = Case(work, f"{kind}-{point}-{n}", cache)
    problems: list[str] = []
    out = {"kind": kind, "command": command, "point": point, "n": n, "lost": 0, "duplicated": 0}
    rc, log = case.run(argv, HARNESS_FAULT=f"{kind}@{point}:{n}")
    out["rc"] = rc
    if kind == "kill" and rc != KILLED:
        problems.append(f"expected SIGKILL (rc {KILLED}), got rc {rc}: {log.strip()[-300:]!r}")
    if kind == "enospc":
        if rc == 0:
            problems.append("a full disk did not stop the run")
        one_line_error(log, "disk full writing", problems)
        if command == "bench":
            samples = case.run_dir() / "samples.jsonl"
            if samples.exists():
                strict_rows(samples)  # the failed append was cut back: no torn line
            if point == "bench.result.mid" and (case.run_dir() / "result.json").exists():
                problems.append("result.json exists after a failed write")
        elif point == "finetune.adapter.mid" and (case.ft_dir() / "adapter").exists():
            problems.append("adapter/ exists after a failed save")
        elif point == "finetune.checkpoint.mid":  # the n-th save failed: state.pt is still step n-1's
            saved = _checkpoint_step(case)
            if saved != (n - 1 or None):
                problems.append(f"after a failed checkpoint save state.pt holds step {saved}, not {n - 1}")
    if kind == "nan":
        one_line_error(log, f"at step {n}", problems)
        saved = _checkpoint_step(case)  # save_every=1: the last good state is step n-1's
        if saved != (n - 1 or None):
            problems.append(f"last good checkpoint: step {saved}, expected {n - 1}")
    if kind == "oom" and command == "finetune":
        one_line_error(log, "finetune.batch_size", problems)
    if kind == "oom" and command == "bench":
        if rc != 0:
            problems.append(f"an OOM in a batch should be retried at half size, got rc {rc}: {log[-300:]!r}")
    else:
        rc2, log2 = case.run(argv)
        out["rerun_rc"] = rc2
        if rc2 != 0:
            problems.append(f"rerun failed (rc {rc2}): {log2.strip()[-400:]!r}")
    if not problems:
        if command == "bench":
            got = bench_state(case)
            out["lost"], out["duplicated"] = compare_bench(got, refs["bench"], problems)
            if kind == "oom":
                retries = got["result"].get("oom_retries")
                if not retries or retries[0]["from"] != 4 or retries[0]["to"] != 2:
                    problems.append(f"oom_retries not recorded: {retries}")
        else:
            compare_finetune(finetune_state(case), refs["finetune"], problems)
    out["recovered"] = not problems
    out["problems"] = problems
    if not problems:
        shutil.rmtree(case.dir, ignore_errors=True)
    return out


def plan(seed: int, counts: dict[str, int], command: str | None = None) -> list[tuple[str, str, str, int]]:
    """(kind, command, point, n) for every scenario; n drawn from the seed among the times it is reached."""
    rng = random.Random(seed)

    def pick(point: str) -> int:
        if command not in (None, point.split(".")[0]):
            return 0
        if not counts.get(point):
            raise SystemExit(f"fault point {point} was never reached by the reference run")
        return rng.randint(1, counts[point])

    out = [("kill", "bench", p, pick(p)) for p in BENCH_KILLS]
    out += [("kill", "finetune", p, pick(p)) for p in FINETUNE_KILLS]
    out += [("enospc", command, p, pick(p)) for command, p in ENOSPC]
    out += [("oom", "bench", "bench.generate", pick("bench.generate")),
            ("oom", "finetune", "finetune.forward", pick("finetune.forward")),
            ("nan", "finetune", "finetune.loss", pick("finetune.loss"))]
    return [s for s in out if command in (None, s[1])]


def summarize(results: list[dict]) -> dict:
    return {
        "faults_injected": len(results),
        "runs_recovered": sum(r["recovered"] for r in results),
        "samples_lost": sum(r["lost"] for r in results),
        "samples_duplicated": sum(r["duplicated"] for r in results),
        "bench_points": len({r["point"] for r in results if r["command"] == "bench"}),
        "finetune_points": len({r["point"] for r in results if r["command"] == "finetune"}),
        "by_kind": {k: sum(r["kind"] == k for r in results) for k in ("kill", "enospc", "oom", "nan")},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=0, help="chooses each fault's occurrence N (default: 0)")
    parser.add_argument("--json", type=Path, help="also write the counts and every scenario here")
    parser.add_argument("--jobs", type=int, default=2, help="scenarios at once, one thread each (default: 2)")
    parser.add_argument("--work", type=Path, help="working folder (default: a temp folder, removed at the end)")
    parser.add_argument("--cache", type=Path, help="twin and data cache (default: $HARNESS_CACHE_DIR or WORK/cache)")
    parser.add_argument("--only", help="comma-separated points to run (default: all)")
    parser.add_argument("--command", choices=["bench", "finetune"], help="only this command's faults")
    args = parser.parse_args(argv)

    started = time.perf_counter()
    work = args.work or Path(tempfile.mkdtemp(prefix="fault-suite-"))
    cache = args.cache or Path(os.environ.get("HARNESS_CACHE_DIR") or work / "cache")
    # Warm the parent once: every forked run starts with these imported.
    import torch  # noqa: F401
    import transformers  # noqa: F401
    from transformers import Qwen2VLForConditionalGeneration  # noqa: F401

    import harness.adapters  # noqa: F401
    import harness.cli  # noqa: F401
    import harness.engine  # noqa: F401
    import harness.train.recipe  # noqa: F401

    refs, counts = {}, {}
    for command, argv_ in (("bench", BENCH), ("finetune", FINETUNE)):
        if args.command not in (None, command):
            continue
        case = Case(work, f"reference-{command}", cache)
        trace = work / f"trace-{command}.txt"
        trace.unlink(missing_ok=True)
        rc, log = case.run(argv_, HARNESS_FAULT_TRACE=str(trace))
        if rc != 0:
            print(f"reference {command} failed (rc {rc}):\n{log[-3000:]}", file=sys.stderr)
            return 1
        counts.update(trace_counts(trace))
        refs[command] = bench_state(case) if command == "bench" else finetune_state(case)
    scenarios = plan(args.seed, counts, args.command)
    if args.only:
        keep = set(args.only.split(","))
        scenarios = [s for s in scenarios if s[2] in keep]
    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        results = list(pool.map(lambda s: scenario(*s, work, cache, refs), scenarios))

    summary = {**summarize(results), "seed": args.seed, "wall_s": round(time.perf_counter() - started, 1)}
    width = max(len(f"{r['kind']}@{r['point']}:{r['n']}") for r in results)
    for r in results:
        status = "recovered" if r["recovered"] else "FAILED: " + "; ".join(r["problems"])
        print(f"{r['kind'] + '@' + r['point'] + ':' + str(r['n']):<{width}}  rc {r['rc']:>3}  {status}")
    print()
    print("| faults injected | runs recovered | samples lost | samples duplicated | bench points | "
          "fine-tune points | kill / enospc / oom / nan | wall (s) |")
    print("|---|---|---|---|---|---|---|---|")
    k = summary["by_kind"]
    print(f"| {summary['faults_injected']} | {summary['runs_recovered']} | {summary['samples_lost']} | "
          f"{summary['samples_duplicated']} | {summary['bench_points']} | {summary['finetune_points']} | "
          f"{k['kill']} / {k['enospc']} / {k['oom']} / {k['nan']} | {summary['wall_s']} |")
    if args.json:
        args.json.write_text(json.dumps({"summary": summary, "scenarios": results}, indent=2) + "\n")
    if not args.work:
        shutil.rmtree(work, ignore_errors=True)
    ok = summary["runs_recovered"] == summary["faults_injected"]
    return 0 if ok and not summary["samples_lost"] and not summary["samples_duplicated"] else 1


if __name__ == "__main__":
    sys.exit(main())
