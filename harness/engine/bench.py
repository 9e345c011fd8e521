"""Run one RunSpec on a loaded adapter: warm up, then batch, time, score and store every sample.

Per-sample records are appended after every batch so an interrupted run resumes where it stopped.
"""

from __future__ import annotations

import time

from harness.metrics import metric_info, score
from harness.progress import Progress
from harness.specs import Decoding, RunSpec
from harness.store import RunStore
from harness.trackers import MemoryTracker, StepTimer, Stopwatch, summarize

__all__ = ["run_bench", "summarize_latency"]


def _batches(items: list, size: int):
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _warm_up(adapter, examples, spec: RunSpec, decoding: Decoding) -> float:
    """One untimed batch so lazy initialisation and kernel selection stay out of the numbers."""
    with Stopwatch(adapter.request.device) as watch:
        prepared = adapter.prepare(examples, spec.prompt_suffix)
        adapter.generate(prepared, decoding)
    return watch.ms


def _run_batch(adapter, examples, spec: RunSpec, decoding: Decoding, batch_index: int) -> list[dict]:
    device = adapter.request.device
    timer = StepTimer(device)
    with Stopwatch(device) as total:
        with Stopwatch(device) as pre:
            prepared = adapter.prepare(examples, spec.prompt_suffix)
        with Stopwatch(device) as gen:
            timer.begin()
            new_tokens = adapter.generate(prepared, decoding, stopping_criteria=[timer])
        with Stopwatch(device) as post:
            texts, counts = adapter.decode(new_tokens)
    rows = []
    for i, (example, text, count) in enumerate(zip(examples, texts, counts)):
        rows.append({
            "id": example.id,
            "image_id": example.image_id,
            "query": example.query,
            "references": list(example.labels),
            "raw_output": text,
            "prediction": adapter.clean(text),
            "meta": example.meta,
            "generated_tokens": count,
            "prompt_tokens": prepared.prompt_tokens[i],
            "image_tokens": prepared.image_tokens[i],
            "batch_index": batch_index,
            "batch_size": len(examples),
            "batch_steps": timer.steps,
            # Every sample in a batch waits for the whole batch: its latency is the batch's.
            "latency_ms": total.ms,
            "preprocess_ms": pre.ms,
            "generate_ms": gen.ms,
            "postprocess_ms": post.ms,
            "prefill_ms": timer.prefill_ms,
            "decode_ms_per_token": timer.decode_ms_per_token,
        })
    return rows


THUMBNAILS = 12  # charts kept per run, so the leaderboard can show examples without the data set


def _save_thumbnails(store: RunStore, examples: list) -> None:
    folder = store.dir / "thumbs"
    folder.mkdir(parents=True, exist_ok=True)
    for example in examples:
        path = folder / f"{example.id}.png"
        if not path.exists():
            image = example.image.copy()
            image.thumbnail((240, 240))
            image.save(path)


def summarize_latency(samples: list[dict]) -> dict:
    """Latency and throughput from stored samples (raw values stay in samples.jsonl)."""
    batches: dict[int, dict] = {}
    for row in samples:
        batches.setdefault(row["batch_index"], row)
    batch_rows = list(batches.values())
    total_ms = sum(b["latency_ms"] for b in batch_rows)
    tokens = sum(row["generated_tokens"] for row in samples)
    return {
        "how": "wall clock (time.perf_counter) with the device synchronised before each reading; "
               "warm-up batch excluded; a sample's latency is its batch's end-to-end time",
        "latency_ms": summarize([row["latency_ms"] for row in samples]),
        "batch_latency_ms": summarize([b["latency_ms"] for b in batch_rows]),
        "preprocess_ms": summarize([b["preprocess_ms"] for b in batch_rows]),
        "prefill_ms": summarize([b["prefill_ms"] for b in batch_rows]),
        "decode_ms_per_token": summarize([b["decode_ms_per_token"] for b in batch_rows]),
        "generated_tokens": summarize([row["generated_tokens"] for row in samples]),
        "image_tokens": summarize([row["image_tokens"] for row in samples]),
        "prompt_tokens": summarize([row["prompt_tokens"] for row in samples]),
        "samples_per_s": len(samples) / (total_ms / 1000.0) if total_ms else None,
        "generated_tokens_per_s": tokens / (total_ms / 1000.0) if total_ms else None,
        "batches": len(batch_rows),
        "timed_samples": len(samples),
    }


def run_bench(spec: RunSpec, store: RunStore, adapter, data, manifest: dict) -> dict:
    """Bench `adapter` on `data` (a ChartSplit); appends to `store`; returns the result record."""
    decoding = Decoding.from_dict(spec.decoding)
    store.begin()
    done = store.done_samples()
    done_ids = {row["id"] for row in done}
    todo = [ex for ex in data if ex.id not in done_ids]
    progress = Progress(len(data), f"bench {spec.model}/{spec.variant} bs{spec.batch_size}", done=len(done))
    _save_thumbnails(store, list(data[:THUMBNAILS]))
    warmup_ms = _warm_up(adapter, todo[: spec.batch_size], spec, decoding) if todo else None
    next_batch = 1 + max((row["batch_index"] for row in done), default=-1)
    started = time.perf_counter()
    with MemoryTracker(adapter.request.device) as memory:
        for offset, batch in enumerate(_batches(todo, spec.batch_size)):
            rows = _run_batch(adapter, batch, spec, decoding, next_batch + offset)
            per_sample = score([r["prediction"] for r in rows], [r["references"] for r in rows],
                               list(spec.metrics)).per_sample
            for row, values in zip(rows, per_sample):
                row["scores"] = values
            store.append_samples(rows)
            progress.update(len(rows))
    samples = store.done_samples()
    scored = score([r["prediction"] for r in samples], [r["references"] for r in samples], list(spec.metrics))
    return {
        "schema_version": spec.schema_version,
        "run_id": spec.run_id,
        "spec": {**spec.to_dict(), "config_hash": spec.config_hash},
        "metrics": scored.aggregates,
        "metric_info": metric_info(list(spec.metrics)),
        "num_samples": len(samples),
        "latency": summarize_latency(samples),
        "memory": memory.result,
        "warmup_ms": warmup_ms,
        "session_wall_s": round(time.perf_counter() - started, 3),
        "resumed_samples": len(done),
        "manifest": {**manifest, **adapter.environment(), "decoding": decoding.to_dict()},
    }
