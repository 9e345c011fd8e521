"""Backends: samples/s of transformers `generate` vs the vLLM engine on the same twin and questions.

Both are ordinary `harness bench` runs of the same spec but for `--backend` (the transformers one in
this Python, the vLLM one in its environment through `--runner venv`; scripts/vllm-env.sh makes it),
so the figure is end-to-end samples/s as the harness reports it (`latency.samples_per_s`: preprocess +
generate + decode, warm-up excluded; engine start-up excluded too). One run each, then the ratio and
the share of identical predictions (`harness compare`). A CPU twin says little about a GPU: the twins
are tiny, so fixed per-call costs dominate both backends here.

Run: python benchmarks/perf/backends.py [--model qwen2vl] [--samples 64] [--batch-size 8] [--threads N] [--json F]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repo's harness, run from anywhere


def main() -> None:
    from harness.analysis import load_run
    from harness.analysis.parity import parity
    from harness.cli import main as harness

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="qwen2vl", choices=["qwen2vl", "smolvlm"], help="a card vLLM supports")
    parser.add_argument("--samples", type=int, default=64, help="default: the whole smoke test split")
    parser.add_argument("--batch-size", type=int, default=8, help="requests per generate call, both backends")
    parser.add_argument("--threads", type=int, help="CPU threads of both (HARNESS_THREADS, OMP_NUM_THREADS)")
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()

    root = Path(tempfile.mkdtemp(prefix="harness-backends-"))
    os.environ.setdefault("HARNESS_CACHE_DIR", str(root / "cache"))
    os.environ["HARNESS_RESULTS_DIR"], os.environ["HARNESS_CHECKPOINTS_DIR"] = str(root / "r"), str(root / "c")
    if args.threads:
        os.environ["HARNESS_THREADS"] = os.environ["OMP_NUM_THREADS"] = str(args.threads)
    common = ["bench", "--model", args.model, "--preset", "smoke", "--variant", "base", "--limit", str(args.samples),
              "--batch-size", str(args.batch_size), "--no-leaderboard", "--force"]
    walls = {}
    for backend, extra in (("transformers", []), ("vllm", ["--backend", "vllm", "--runner", "venv"])):
        started = time.perf_counter()
        if harness(common + extra) != 0:
            raise SystemExit(f"backends: the {backend} run failed (see above)")
        walls[backend] = time.perf_counter() - started
    runs = {b: load_run(next((root / "r").glob(f"{args.model}-base{'-vllm' if b == 'vllm' else ''}-bs*")))
            for b in walls}
    figures = {"model": args.model, "samples": args.samples, "batch_size": args.batch_size,
               "machine": runs["transformers"][0]["manifest"].get("hardware"), "backends": {}}
    for backend, (result, _) in runs.items():
        lat = result["latency"]
        figures["backends"][backend] = {
            "samples_per_s": lat["samples_per_s"], "generated_tokens_per_s": lat["generated_tokens_per_s"],
            "command_wall_s": round(walls[backend], 1),  # process start, imports, model/engine load included
            "engine_ttft_ms_p50": (lat.get("engine_ttft_ms") or {}).get("p50"),
            "engine_tpot_ms_p50": (lat.get("engine_tpot_ms") or {}).get("p50")}
    report = parity(*runs["transformers"], *runs["vllm"])
    ratio = figures["backends"]["vllm"]["samples_per_s"] / figures["backends"]["transformers"]["samples_per_s"]
    figures.update(ratio=ratio, identical_share=report.share)
    print(f"backends on the {args.model} twin, {args.samples} questions, {args.batch_size} per generate call "
          f"({figures['machine']}); one run each")
    for backend, row in figures["backends"].items():
        print(f"  {backend:>12}: {row['samples_per_s']:7.2f} samples/s  {row['generated_tokens_per_s']:8.1f} tokens/s"
              f"  (whole command {row['command_wall_s']:.0f} s)")
    print(f"  samples/s vllm / transformers: {ratio:.2f}x; identical predictions {report.identical}/{report.samples}")
    print("  a CPU twin says little about a GPU: real sizes are unmeasured here")
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":  # vLLM starts its engine in another process
    main()
