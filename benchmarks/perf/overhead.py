"""Harness overhead: the bench loop vs a bare loop calling the same model's `generate`, as a ratio.

Both loops run in this one process on the same loaded twin, the same charts and the same batch size,
each with one warm-up batch, after one untimed run of each (imports, first-touch costs). They alternate
(bare, harness, harness, bare, ...) so drift from other load on the machine hits both alike; the figure
is median(harness) / median(bare) of wall time; the ratio of the fastest runs and of process CPU time
are printed too. On a shared machine use --threads 1: two torch threads on two busy cores stall at
every parallel region and the wall times then vary tenfold from run to run, for both loops alike.

- harness: `harness.engine.run_bench`, i.e. what `harness bench` runs per spec: warm-up, timed batches
  with the step timer and the memory sampler, scoring every batch, fsync'd samples.jsonl, thumbnails,
  summaries. (Model loading and data loading are the same for both and are left out. Thumbnails are
  encoded once per process and data set, as in a `harness bench` that runs several variants or batch
  sizes; the untimed first run pays for them.)
- bare: for each batch, the adapter's `prepare` (prompt + processor: the inputs), `model.generate`
  with the same generation config, and `batch_decode`. Nothing else.

Run: python benchmarks/perf/overhead.py [--model qwen2vl] [--samples 64] [--batch-size 8] [--repeats 8] [--threads 1]
"""

from __future__ import annotations

import argparse
import json
import time

from _twin import bench_once, describe_machine, median, model_names, open_twin


def bare_loop(twin, batch_size: int) -> tuple[float, float]:
    """(wall s, CPU s) for warm-up + every batch: inputs, the model's own generate, text. No measurement, no files."""
    import torch
    from transformers import GenerationConfig

    from harness.adapters.base import ProcessorAdapter
    from harness.specs import Decoding

    adapter, spec = twin.adapter, twin.spec
    decoding = Decoding.from_dict(spec.decoding)
    examples = list(twin.data)
    batches = [examples[i:i + batch_size] for i in range(0, len(examples), batch_size)]
    direct = isinstance(adapter, ProcessorAdapter)
    if direct:
        config = GenerationConfig(**decoding.to_dict(), eos_token_id=adapter.stop_token_ids(),
                                  pad_token_id=adapter.tokenizer.pad_token_id)

    def one(batch):
        prepared = adapter.prepare(batch, spec.prompt_suffix)
        if direct:
            with torch.inference_mode():
                out = adapter.model.generate(**prepared.inputs, generation_config=config)
            new = out[:, prepared.inputs["input_ids"].shape[1]:]
            return adapter.tokenizer.batch_decode(new, skip_special_tokens=True)
        return adapter.generate(prepared, decoding)  # e.g. Moondream: its generate is the model call

    start, cpu = time.perf_counter(), time.process_time()
    one(batches[0])  # warm-up, as the harness does
    for batch in batches:
        one(batch)
    return time.perf_counter() - start, time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="qwen2vl", choices=model_names(), help="a registered card")
    parser.add_argument("--samples", type=int, default=64, help="default: the whole smoke test split")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=8, help="pairs of runs (each pair: bare + harness)")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()

    twin = open_twin(args.model, args.samples, args.batch_size, args.threads)
    bare_loop(twin, args.batch_size)  # first touch of every code path (imports, caches), for neither side
    bench_once(twin, twin.spec)
    bare, harness, bare_cpu, harness_cpu = [], [], [], []
    for i in range(args.repeats):
        order = ("bare", "harness") if i % 2 == 0 else ("harness", "bare")
        for which in order:
            if which == "bare":
                wall, cpu = bare_loop(twin, args.batch_size)
                bare.append(wall)
                bare_cpu.append(cpu)
            else:
                cpu = time.process_time()
                harness.append(bench_once(twin, twin.spec)[0])
                harness_cpu.append(time.process_time() - cpu)
    ratio = median(harness) / median(bare)
    min_ratio = min(harness) / min(bare)
    cpu_ratio = median(harness_cpu) / median(bare_cpu)
    pairs = [h / b for h, b in zip(harness, bare)]
    figures = {"model": args.model, "samples": args.samples, "batch_size": args.batch_size,
               "repeats": args.repeats, "bare_s": bare, "harness_s": harness, "overhead_ratio": ratio,
               "pair_ratios": pairs, "bare_cpu_s": bare_cpu, "harness_cpu_s": harness_cpu,
               "cpu_time_ratio": cpu_ratio, "min_ratio": min_ratio, "machine": describe_machine()}
    print(f"harness overhead on the {args.model} twin, {args.samples} samples at batch {args.batch_size}, "
          f"{args.repeats} alternating pairs ({figures['machine']})")
    print(f"  bare loop  (prepare + model.generate + batch_decode): median {median(bare):.3f} s  "
          f"{', '.join(f'{v:.3f}' for v in bare)}")
    print(f"  harness    (run_bench: timers, memory, scoring, files):  median {median(harness):.3f} s  "
          f"{', '.join(f'{v:.3f}' for v in harness)}")
    print(f"  overhead ratio, wall time (median harness / median bare): {ratio:.3f}   per pair: "
          f"{', '.join(f'{v:.3f}' for v in pairs)}   target <= 1.10")
    print(f"  overhead ratio, fastest run of each (min harness / min bare): {min_ratio:.3f}")
    print(f"  overhead ratio, process CPU time (medians): {cpu_ratio:.3f}  (bare {median(bare_cpu):.3f} s, "
          f"harness {median(harness_cpu):.3f} s)")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(figures, fh, indent=2)


if __name__ == "__main__":
    main()
