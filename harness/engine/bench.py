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

from harness import faults
from harness.backends.metrics import engine_latency
from harness.data.schema import RowError, check_skipped
from harness.engine.factors import speed_factors
from harness.errors import HarnessError
from harness.fileio import write_bytes_atomic
from harness.metrics import get_metric, metric_info, score
from harness.metrics.scoring import subset_metrics
from harness.progress import Progress
from harness.records import LatencySummary, Manifest, RunResult, utc_now
from harness.specs import SCHEMA_VERSION, Decoding, RunSpec
from harness.store import RunStore
from harness.trackers import MemoryTracker, StepTimer, Stopwatch, latency_breakdown, summarize

if TYPE_CHECKING:
    from harness.adapters.protocol import InferenceAdapter

__all__ = ["build_result", "run_bench", "summarize_latency"]


def _batches(items: list, size: int):
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _warm_up(adapter: InferenceAdapter, examples, spec: RunSpec, decoding: Decoding) -> float:
    """One untimed batch so lazy initialisation and kernel selection stay out of the numbers.

    Out of GPU memory, it warms up on half as many (the timed batches then halve on their own).
    """
    while True:
        try:
            with Stopwatch(adapter.request.device) as watch:
                adapter.generate(adapter.prepare(examples, spec.prompt_suffix), decoding)
            return watch.ms
        except Exception as exc:
            if not _is_oom(exc):
                raise
        examples = examples[: _halved(spec, examples)]


def _is_oom(exc: BaseException) -> bool:
    import torch

    return isinstance(exc, torch.cuda.OutOfMemoryError)


def _halved(spec: RunSpec, examples) -> int:
    """After a CUDA OOM on `examples`: the size to retry at (half, rounded up), the cache freed; at one, the error.

    Called outside the except block, whose traceback holds the failed attempt's tensors.
    """
    import torch

    if len(examples) == 1:
        raise HarnessError(
            f"{spec.model}: CUDA out of memory on a single sample ({examples[0].id}) even after halving --batch-size "
            f"{spec.batch_size} to 1; lower the image resolution (max_pixels / the processor's size) or use a larger "
            "GPU")
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    return (len(examples) + 1) // 2


def _run_halving(adapter: InferenceAdapter, examples, spec: RunSpec, decoding: Decoding, batch_index: int,
                 retries: list[dict]) -> tuple[list[dict], int]:
    """`_run_batch`, and on a CUDA OOM the same examples again in two halves (down to batch size 1).

    Returns the rows and the next free batch index. Each half is a batch of its own (own batch_index,
    batch_size and clock): the failed attempt's time is discarded, so a retried batch's latency is the
    successful attempts', at the batch size that actually ran. `retries` gets {batch_index, from, to}.
    """
    try:
        return _run_batch(adapter, examples, spec, decoding, batch_index), batch_index + 1
    except Exception as exc:
        if not _is_oom(exc):
            raise
    half = _halved(spec, examples)
    retries.append({"batch_index": batch_index, "from": len(examples), "to": half})
    rows = []
    for part in _batches(examples, half):
        part_rows, batch_index = _run_halving(adapter, part, spec, decoding, batch_index, retries)
        rows.extend(part_rows)
    return rows, batch_index


def _run_batch(adapter: InferenceAdapter, examples, spec: RunSpec, decoding: Decoding, batch_index: int) -> list[dict]:
    device = adapter.request.device
    timer = StepTimer(device)
    with Stopwatch(device) as total:
        with Stopwatch(device) as pre:
            prepared = adapter.prepare(examples, spec.prompt_suffix)
        with Stopwatch(device) as gen:
            faults.point("bench.generate", None)  # where a too-large batch runs out of GPU memory
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
        if generation.request_metrics is not None:  # an engine's own per-request clocks (harness/backends/)
            rows[-1].update(generation.request_metrics[i])
    return rows


THUMBNAILS = 12  # charts kept per run, so the leaderboard can show examples without the data set
_THUMB_PNG: dict[tuple[str, str], bytes] = {}  # (data fingerprint, sample id) -> PNG, encoded once per process


def _save_thumbnails(store: RunStore, examples: list, fingerprint: str | None) -> None:
    import io

    folder = store.dir / "thumbs"
    folder.mkdir(parents=True, exist_ok=True)
    faults.point("bench.before_thumbnails")
    for example in examples:
        path = folder / f"{example.id}.png"
        if path.exists():
            continue
        key = (str(fingerprint), str(example.id))
        if key not in _THUMB_PNG or fingerprint is None:
            try:
                image = example.image.copy()
            except RowError:  # the bench finds and records it when its batch decodes it
                continue
            image.thumbnail((240, 240), reducing_gap=2.0)
            buffer = io.BytesIO()
            image.save(buffer, format="PNG", compress_level=1)  # fast: written inside the bench's wall time
            _THUMB_PNG[key] = buffer.getvalue()
        # Atomic: a torn PNG left by a kill would pass the exists() check above on resume.
        write_bytes_atomic(path, _THUMB_PNG[key], fault="bench.thumbnail")
    faults.point("bench.after_thumbnails")


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
        **engine_latency(samples),
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
    skips = _Skips(data)
    progress = Progress(len(data), f"bench {spec.model}/{spec.variant} bs{spec.batch_size}", done=len(done))
    _save_thumbnails(store, data[:THUMBNAILS], getattr(data, "fingerprint", None))
    warmup_ms = None
    while todo and warmup_ms is None:
        try:
            warmup_ms = _warm_up(adapter, todo[: spec.batch_size], spec, decoding)
        except RowError:  # an image that fails only when decoded: drop it (recorded) and warm up on the rest
            todo = skips.usable(todo[: spec.batch_size]) + todo[spec.batch_size:]
    faults.point("bench.after_warmup")
    batch_index = 1 + max((row["batch_index"] for row in done), default=-1)
    oom_retries: list[dict] = []  # this session's; the rows keep each batch's actual batch_size
    # Corpus-level metrics (BLEU) have no per-sample value: score them once at the end, not per batch.
    per_sample_metrics = [m for m in spec.metrics if get_metric(m).has_per_sample] or list(spec.metrics)
    started = time.perf_counter()
    # Each batch's rows are appended (and fsync'd) by one writer thread while the next batch runs: the
    # disk wait leaves the timed loop, the order stays, and at most the batch in flight is unwritten if
    # the process dies (a resume reruns it). A write error surfaces at the next batch.
    pending = None
    with MemoryTracker(adapter.request.device) as memory, \
            ThreadPoolExecutor(max_workers=1, thread_name_prefix="samples-writer") as writer:
        for batch in _batches(todo, spec.batch_size):
            faults.point("bench.before_batch")
            try:
                rows, batch_index = _run_halving(adapter, batch, spec, decoding, batch_index, oom_retries)
            except RowError:  # as above; the failed attempt's time is discarded with it
                batch = skips.usable(batch)
                if not batch:
                    continue
                rows, batch_index = _run_halving(adapter, batch, spec, decoding, batch_index, oom_retries)
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
    return build_result(
        spec, store.done_samples(), manifest=manifest, env=adapter.environment(), decoding=decoding,
        clock=StepTimer(adapter.request.device).clock, memory=memory.result, warmup_ms=warmup_ms, merge_ms=merge_ms,
        session_wall_s=round(time.perf_counter() - started, 3), resumed=len(done), started_at=started_at,
        oom_retries=oom_retries, skipped=skips.records())


class _Skips:
    """Rows left out of a run: those the loader skipped, and images that fail only when decoded (a body cut
    behind a good header). Those are found where the batch decodes them, so good data costs no extra decode;
    the bound on skipped rows (data/schema.py) applies to both together."""

    def __init__(self, data) -> None:
        self.errors = list(getattr(data, "skipped", ()))
        self.skipped = {s.id: s.record() for s in self.errors}
        self.asked = getattr(data, "asked_rows", len(data))
        self.where = f"{getattr(data, 'source', 'data')} (split '{getattr(data, 'split', '?')}')"

    def usable(self, examples: list) -> list:
        """The examples whose image decodes; the others are recorded with their reason."""
        good = []
        for example in examples:
            try:
                example.image_loader()
            except RowError as exc:
                self.errors.append(exc)
                self.skipped[example.id] = {"id": example.id, "where": exc.where, "field": exc.field,
                                            "reason": exc.reason}
                continue
            good.append(example)
        check_skipped(self.where, self.asked, self.errors)
        return good

    def records(self) -> list[dict]:
        return list(self.skipped.values())


def build_result(spec: RunSpec, samples: list[dict], *, manifest: dict, env: dict, clock: str | None,
                 memory: dict | None, warmup_ms: float | None, merge_ms: float | None, session_wall_s: float | None,
                 resumed: int, started_at: str | None, decoding: Decoding | None = None, latency: dict | None = None,
                 oom_retries: list | None = None, shards: list | None = None, skipped: list | None = None) -> dict:
    """The result record from a run's stored samples: run_bench's, and the driver's merge of a run's shards
    (harness/shards.py, which passes its own `latency` and the per-shard summaries in `shards`)."""
    decoding = decoding or Decoding.from_dict(spec.decoding)
    aggregates = _aggregate(samples, list(spec.metrics))
    # Built through the declared records (harness/records/): a key they do not know fails here.
    return RunResult(
        schema_version=SCHEMA_VERSION,  # the layout this code writes
        run_id=spec.run_id,
        spec={**spec.to_dict(), "config_hash": spec.config_hash},
        metrics=aggregates,
        subset_metrics=subset_metrics(samples, spec.data_format, lambda rows: _aggregate(rows, list(spec.metrics))),
        metric_info=metric_info(list(spec.metrics)),
        num_samples=len(samples),
        latency=LatencySummary.from_dict(latency if latency is not None else summarize_latency(samples, clock=clock)),
        memory=memory,
        speed_factors=speed_factors(spec, decoding, env, manifest, samples),
        warmup_ms=warmup_ms,
        merge_ms=merge_ms,
        session_wall_s=session_wall_s,
        resumed_samples=resumed,
        oom_retries=oom_retries or [],
        skipped_samples=skipped or [],
        manifest=Manifest.from_dict({"dataset_rows_asked": len(samples) + len(skipped or []), **manifest, **env,
                                     "decoding": decoding.to_dict()}),
        started_at=started_at,
        finished_at=utc_now(),
        **({"shards": shards} if shards is not None else {}),
    ).to_dict()
