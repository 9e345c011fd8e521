"""Run one RunSpec on a loaded adapter: warm up, then batch, time, score and store every sample.

Per-sample records are appended after every batch so an interrupted run resumes where it stopped.
Timing conventions (shared/SCORING.md): one untimed warm-up batch; the device is synchronised before
any host clock is read, decode steps are stamped with CUDA events on a GPU; raw values stay in
samples.jsonl and result.json holds mean/p50/p90/p95 plus the exact breakdown `harness explain` uses.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

from harness.engine.factors import speed_factors
from harness.metrics import get_metric, metric_info, score
from harness.progress import Progress
from harness.records import LatencySummary, Manifest, RunResult, utc_now
from harness.specs import SCHEMA_VERSION, Decoding, RunSpec
from harness.store import RunStore
from harness.trackers import MemoryTracker, StepTimer, Stopwatch, latency_breakdown, summarize

if TYPE_CHECKING:
    from harness.adapters.protocol import InferenceAdapter

__all__ = ["run_bench", "summarize_latency"]


def _batches(items: list, size: int):
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _warm_up(adapter: InferenceAdapter, examples, spec: RunSpec, decoding: Decoding) -> float:
    """One untimed batch so lazy initialisation and kernel selection stay out of the numbers."""
    with Stopwatch(adapter.request.device) as watch:
        prepared = adapter.prepare(examples, spec.prompt_suffix)
        adapter.generate(prepared, decoding)
    return watch.ms


def _run_batch(adapter: InferenceAdapter, examples, spec: RunSpec, decoding: Decoding, batch_index: int) -> list[dict]:
    device = adapter.request.device
    timer = StepTimer(device)
    with Stopwatch(device) as total:
        with Stopwatch(device) as pre:
            prepared = adapter.prepare(examples, spec.prompt_suffix)
        with Stopwatch(device) as gen:
            timer.begin()
            generation = adapter.generate(prepared, decoding, on_step=timer.stamp)
        with Stopwatch(device) as post:
            texts, counts = adapter.decode(generation)
    timer.finish()
    prefill = timer.prefill_ms
    step_ms = [round(v, 4) for v in timer.step_ms]
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
            "batch_steps": timer.steps,  # decoding steps of the batch = its longest answer (with beams: any beam)
            # Every sample in a batch waits for the whole batch: its latency is the batch's.
            "latency_ms": total.ms,
            "preprocess_ms": pre.ms,
            "generate_ms": gen.ms,
            "postprocess_ms": post.ms,
            "prefill_ms": prefill,
            "ttft_ms": None if prefill is None else pre.ms + prefill,
            "decode_ms": timer.decode_ms,
            "decode_ms_per_token": timer.decode_ms_per_token,
            "step_ms": step_ms,  # raw: the first is the prefill, each other one decode step
        })
    return rows


THUMBNAILS = 12  # charts kept per run, so the leaderboard can show examples without the data set
_THUMB_PNG: dict[tuple[str, str], bytes] = {}  # (data fingerprint, sample id) -> PNG, encoded once per process


def _save_thumbnails(store: RunStore, examples: list, fingerprint: str | None) -> None:
    import io

    folder = store.dir / "thumbs"
    folder.mkdir(parents=True, exist_ok=True)
    for example in examples:
        path = folder / f"{example.id}.png"
        if path.exists():
            continue
        key = (str(fingerprint), str(example.id))
        if key not in _THUMB_PNG or fingerprint is None:
            image = example.image.copy()
            image.thumbnail((240, 240), reducing_gap=2.0)
            buffer = io.BytesIO()
            image.save(buffer, format="PNG", compress_level=1)  # fast: written inside the bench's wall time
            _THUMB_PNG[key] = buffer.getvalue()
        path.write_bytes(_THUMB_PNG[key])


HOW = ("end-to-end = preprocess + generate + decode-to-text per batch, wall clock (time.perf_counter) with "
       "the device synchronised before each reading; decode steps stamped with {clock}; warm-up batch excluded; "
       "a sample's latency is its batch's end-to-end time; decode_ms_per_token is per step (one token per "
       "sequence), samples_per_s and generated_tokens_per_s are throughput at the batch size used")


def summarize_latency(samples: list[dict], clock: str | None = None) -> dict:
    """Latency and throughput from stored samples (raw values stay in samples.jsonl)."""
    batches: dict[int, dict] = {}
    for row in samples:
        batches.setdefault(row["batch_index"], row)
    batch_rows = list(batches.values())
    total_ms = sum(b["latency_ms"] for b in batch_rows)
    tokens = sum(row["generated_tokens"] for row in samples)

    def per_batch(key: str):
        return summarize([b.get(key) for b in batch_rows])

    untimed = sum(1 for b in batch_rows if b.get("prefill_ms") is None)
    unavailable = {}
    if untimed:
        reason = (f"{untimed} of {len(batch_rows)} batches have no decoding-step stamps: the adapter's generate did "
                  "not call the step timer (e.g. a model without batched generation, at batch size > 1)")
        unavailable = {key: reason for key in ("prefill_ms", "ttft_ms", "decode_ms", "decode_ms_per_token")}
    return {
        "how": HOW.format(clock=clock or "the same clock"),
        "clock": clock,
        "batch_size": max((b.get("batch_size") or 0 for b in batch_rows), default=None),
        "latency_ms": summarize([row["latency_ms"] for row in samples]),
        "batch_latency_ms": per_batch("latency_ms"),
        "preprocess_ms": per_batch("preprocess_ms"),
        "generate_ms": per_batch("generate_ms"),
        "postprocess_ms": per_batch("postprocess_ms"),
        "prefill_ms": per_batch("prefill_ms"),
        "ttft_ms": per_batch("ttft_ms"),
        "decode_ms": per_batch("decode_ms"),
        "decode_ms_per_token": per_batch("decode_ms_per_token"),
        "decode_steps": summarize([max((b.get("batch_steps") or 0) - 1, 0) for b in batch_rows]),
        "generated_tokens": summarize([row["generated_tokens"] for row in samples]),
        "image_tokens": summarize([row["image_tokens"] for row in samples]),
        "prompt_tokens": summarize([row["prompt_tokens"] for row in samples]),
        "samples_per_s": len(samples) / (total_ms / 1000.0) if total_ms else None,
        "generated_tokens_per_s": tokens / (total_ms / 1000.0) if total_ms else None,
        "batches": len(batch_rows),
        "timed_samples": len(samples),
        "breakdown": latency_breakdown(samples),
        "unavailable": unavailable,
    }


def _aggregate(samples: list[dict], names: list[str]) -> dict:
    """Set scores from the per-sample scores already stored with each row (computed where missing)."""
    predictions = [r["prediction"] for r in samples]
    references = [r["references"] for r in samples]
    out = {}
    for name in names:
        metric = get_metric(name)
        stored = [(r.get("scores") or {}).get(name) for r in samples]
        values = stored if metric.has_per_sample and None not in stored else None
        out[name] = metric.aggregate(predictions, references, values)
    return out


def run_bench(spec: RunSpec, store: RunStore, adapter: InferenceAdapter, data, manifest: dict) -> dict:
    """Bench `adapter` on `data` (a ChartSplit); appends to `store`; returns the result record."""
    started_at = utc_now()
    decoding = Decoding.from_dict(spec.decoding)
    merge_ms = None
    if spec.merge_adapter:
        with Stopwatch(adapter.request.device) as merge:
            adapter.merge_adapter()
        merge_ms = merge.ms
    store.begin()
    done = store.done_samples()
    done_ids = {row["id"] for row in done}
    todo = [ex for ex in data if ex.id not in done_ids]
    progress = Progress(len(data), f"bench {spec.model}/{spec.variant} bs{spec.batch_size}", done=len(done))
    _save_thumbnails(store, list(data[:THUMBNAILS]), getattr(data, "fingerprint", None))
    warmup_ms = _warm_up(adapter, todo[: spec.batch_size], spec, decoding) if todo else None
    next_batch = 1 + max((row["batch_index"] for row in done), default=-1)
    # Corpus-level metrics (BLEU) have no per-sample value: score them once at the end, not per batch.
    per_sample_metrics = [m for m in spec.metrics if get_metric(m).has_per_sample] or list(spec.metrics)
    started = time.perf_counter()
    # Each batch's rows are appended (and fsync'd) by one writer thread while the next batch runs: the
    # disk wait leaves the timed loop, the order stays, and at most the batch in flight is unwritten if
    # the process dies (a resume reruns it). A write error surfaces at the next batch.
    pending = None
    with MemoryTracker(adapter.request.device) as memory, \
            ThreadPoolExecutor(max_workers=1, thread_name_prefix="samples-writer") as writer:
        for offset, batch in enumerate(_batches(todo, spec.batch_size)):
            rows = _run_batch(adapter, batch, spec, decoding, next_batch + offset)
            per_sample = score([r["prediction"] for r in rows], [r["references"] for r in rows],
                               per_sample_metrics).per_sample
            for row, values in zip(rows, per_sample):
                row["scores"] = values
            if pending is not None:
                pending.result()
            pending = writer.submit(store.append_samples, rows)
            progress.update(len(rows))
        if pending is not None:
            pending.result()
    samples = store.done_samples()
    env = adapter.environment()
    clock = StepTimer(adapter.request.device).clock
    aggregates = _aggregate(samples, list(spec.metrics))
    # Built through the declared records (harness/records/): a key they do not know fails here.
    return RunResult(
        schema_version=SCHEMA_VERSION,  # the layout this code writes
        run_id=spec.run_id,
        spec={**spec.to_dict(), "config_hash": spec.config_hash},
        metrics=aggregates,
        metric_info=metric_info(list(spec.metrics)),
        num_samples=len(samples),
        latency=LatencySummary.from_dict(summarize_latency(samples, clock=clock)),
        memory=memory.result,
        speed_factors=speed_factors(spec, decoding, env, manifest, samples),
        warmup_ms=warmup_ms,
        merge_ms=merge_ms,
        session_wall_s=round(time.perf_counter() - started, 3),
        resumed_samples=len(done),
        manifest=Manifest.from_dict({**manifest, **env, "decoding": decoding.to_dict()}),
        started_at=started_at,
        finished_at=utc_now(),
    ).to_dict()
