"""Batching gain: samples/s at batch 8 vs batch 1 on a twin, as the harness reports it.

Runs `run_bench` (what `harness bench --batch-size 1,8` runs per spec) at each batch size on the same
loaded twin and charts, alternating the sizes over the repeats so load from other processes hits both
alike, and prints the median `latency.samples_per_s` of each and their ratio, plus generated tokens/s,
p50 latency and peak memory per batch size.

Run: python benchmarks/perf/batching.py [--model qwen2vl] [--samples 64] [--sizes 1,8] [--repeats 3] [--threads 1]
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace

from _twin import bench_once, describe_machine, median, model_names, open_twin


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="qwen2vl", choices=model_names(), help="a registered card")
    parser.add_argument("--samples", type=int, default=64, help="default: the whole smoke test split")
    parser.add_argument("--sizes", default="1,8", help="batch sizes; the gain is last over first")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]

    twin = open_twin(args.model, args.samples, sizes[0], args.threads)
    specs = {bs: replace(twin.spec, batch_size=bs) for bs in sizes}
    bench_once(twin, specs[sizes[0]])  # first touch (imports, caches), for neither size
    runs: dict[int, list[dict]] = {bs: [] for bs in sizes}
    for i in range(args.repeats):
        for bs in sizes if i % 2 == 0 else reversed(sizes):
            runs[bs].append(bench_once(twin, specs[bs])[1])

    figures = {"model": args.model, "samples": args.samples, "repeats": args.repeats, "machine": describe_machine(),
               "sizes": {}}
    print(f"batching gain on the {args.model} twin, {args.samples} samples, {args.repeats} alternating repeats "
          f"({figures['machine']})")
    for bs in sizes:
        lat = [r["latency"] for r in runs[bs]]
        sps = [x["samples_per_s"] for x in lat]
        row = {"samples_per_s": median(sps), "samples_per_s_all": sps,
               "generated_tokens_per_s": median([x["generated_tokens_per_s"] for x in lat]),
               "latency_p50_ms": median([x["latency_ms"]["p50"] for x in lat]),
               "decode_ms_per_token_p50": median([x["decode_ms_per_token"]["p50"] for x in lat]),
               "rss_peak_mb": max(r["memory"]["rss_peak_mb"] for r in runs[bs])}
        figures["sizes"][bs] = row
        print(f"  batch {bs:>2}: {row['samples_per_s']:7.2f} samples/s  ({', '.join(f'{v:.2f}' for v in sps)})  "
              f"{row['generated_tokens_per_s']:8.1f} tokens/s  p50 latency {row['latency_p50_ms']:8.1f} ms  "
              f"decode {row['decode_ms_per_token_p50']:6.2f} ms/step  peak RSS {row['rss_peak_mb']:.0f} MB")
    gain = figures["sizes"][sizes[-1]]["samples_per_s"] / figures["sizes"][sizes[0]]["samples_per_s"]
    figures["gain"] = gain
    print(f"  gain, samples/s at batch {sizes[-1]} / batch {sizes[0]}: {gain:.2f}x   target >= 2x")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(figures, fh, indent=2)


if __name__ == "__main__":
    main()
