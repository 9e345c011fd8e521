"""The records themselves: samples.jsonl rows, result.json with its latency summary and manifest,
training.json. Field comments say where each value comes from."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from harness.records.base import Record
from harness.specs import SCHEMA_VERSION

__all__ = ["LatencySummary", "Manifest", "RunResult", "Sample", "TrainingRecord"]


@dataclass(frozen=True)
class Sample(Record):
    """One samples.jsonl row (engine/bench.py `_run_batch`, scores added per batch).

    Timings are the batch's (every sample waits for its whole batch); step_ms holds the raw step
    stamps, the first being the prefill.
    """

    FILE: ClassVar[str] = "samples.jsonl row"

    id: str
    references: list
    prediction: str
    batch_index: int
    latency_ms: float
    generated_tokens: int
    image_id: str | None = None
    query: str | None = None
    raw_output: str | None = None
    meta: dict | None = None
    prompt_tokens: int | None = None
    image_tokens: int | None = None
    batch_size: int | None = None
    batch_steps: int | None = None
    preprocess_ms: float | None = None
    generate_ms: float | None = None
    postprocess_ms: float | None = None
    prefill_ms: float | None = None
    ttft_ms: float | None = None
    decode_ms: float | None = None
    decode_ms_per_token: float | None = None
    step_ms: list | None = None
    scores: dict | None = None
    # vLLM backend: this request's own figures from the engine (harness/backends/metrics.py)
    engine_ttft_ms: float | None = None
    engine_tpot_ms: float | None = None
    engine_queue_ms: float | None = None


@dataclass(frozen=True)
class LatencySummary(Record):
    """result.json "latency" (engine/bench.py `summarize_latency`): each *_ms / *_tokens entry is a
    summary dict (mean, p50, p90, p95, min, max, n), None when no batch measured it."""

    FILE: ClassVar[str] = "result.json: latency"

    latency_ms: dict | None
    how: str | None = None
    clock: str | None = None
    batch_size: int | None = None
    batch_latency_ms: dict | None = None
    preprocess_ms: dict | None = None
    generate_ms: dict | None = None
    postprocess_ms: dict | None = None
    prefill_ms: dict | None = None
    ttft_ms: dict | None = None
    decode_ms: dict | None = None
    decode_ms_per_token: dict | None = None
    decode_steps: dict | None = None
    generated_tokens: dict | None = None
    image_tokens: dict | None = None
    prompt_tokens: dict | None = None
    samples_per_s: float | None = None
    generated_tokens_per_s: float | None = None
    batches: int | None = None
    timed_samples: int | None = None
    breakdown: dict | None = None  # trackers/breakdown.py: the exact sums `harness explain` uses
    unavailable: dict | None = None  # key -> why it could not be measured
    # vLLM backend (harness/backends/vllm.py): per-request figures from the engine's own metrics, and the
    # keys of this summary that do not mean the same as the transformers backend's (never compared).
    engine_ttft_ms: dict | None = None
    engine_tpot_ms: dict | None = None
    engine_queue_ms: dict | None = None
    not_comparable: dict | None = None  # key -> why it differs in meaning from the transformers backend's


@dataclass(frozen=True)
class Manifest(Record):
    """result.json "manifest": where and how the run happened.

    Declared: harness/manifest.py `environment_manifest` (harness, image, host, packages), the run's
    data and settings (runners/local.py) and the facts every adapter reports (adapters/base.py
    `environment()`). Any other key is a model-specific fact its adapter adds (e.g. Moondream's
    remote_code_class): stored flat beside the others, free-form like training.json's environment,
    and kept in `model_facts` here.
    """

    FILE: ClassVar[str] = "result.json: manifest"
    OPEN: ClassVar[str | None] = "model_facts"

    # harness and container
    harness_version: str | None = None
    harness_git_sha: str | None = None
    image: str | None = None  # image tag the container ran, e.g. harness-qwen2vl:0.1.0 (HARNESS_IMAGE)
    image_id: str | None = None  # the local image id, sha256:... (HARNESS_IMAGE_ID, set by the docker runner)
    image_digest: str | None = None  # registry digest repo@sha256:..., when the image was pushed or pulled
    base_image: str | None = None  # what the base image started FROM (tag@digest on the GPU path)
    # host
    python: str | None = None
    platform: str | None = None
    packages: dict | None = None
    hardware: str | None = None
    device: str | None = None
    cpu: str | None = None
    cpu_count: int | None = None
    torch_threads: int | None = None
    cuda_runtime: str | None = None
    gpu_name: str | None = None
    driver: str | None = None
    # data and settings
    dataset_source: str | None = None
    dataset_fingerprint: str | None = None
    dataset_rows: int | None = None  # rows the loader kept (the bench may still skip one that fails to decode)
    dataset_rows_asked: int | None = None  # rows asked for, skipped ones included (what the fingerprint covers)
    model_revision: str | None = None
    dtype: str | None = None
    batch_size: int | None = None
    seed: int | None = None
    decoding: dict | None = None
    # the loaded model, as every adapter reports it (adapters/base.py environment())
    attn_implementation: str | None = None
    attn_implementation_per_module: dict | None = None
    adapter_kind: str | None = None
    adapter_merged: bool | None = None
    lora: dict | None = None
    quantization: str | None = None
    param_dtype: str | None = None
    param_dtypes: dict | None = None
    processor_kwargs: dict | None = None
    cluster: dict | None = None  # the ray runner: ray version, and node id / hostname / GPU per shard
    model_facts: dict = field(default_factory=dict)  # the adapter's own additions (undeclared keys)


@dataclass(frozen=True)
class TrainingRecord(Record):
    """training.json (train/recipe.py `run_finetune`), also stored as result.json "finetune"."""

    FILE: ClassVar[str] = "training.json"
    VERSIONED: ClassVar[bool] = True

    adapter_id: str
    schema_version: int = SCHEMA_VERSION
    model: str | None = None
    recipe_name: str | None = None  # the card's named recipe (FinetuneSpec.recipe_name)
    method: str | None = None
    trainable_params: int | None = None
    total_params: int | None = None
    steps: int | None = None
    epochs: int | None = None
    train_samples: int | None = None
    batch_size: int | None = None
    grad_accum: int | None = None
    loss_per_step: list | None = None  # [{"step", "loss", "lr"}]
    first_loss: float | None = None
    final_loss: float | None = None
    wall_time_s: float | None = None
    wall_time_note: str | None = None
    samples_per_s_this_session: float | None = None
    samples_per_s: float | None = None
    tokens_per_s_this_session: float | None = None
    labelled_share_mean: float | None = None
    memory: dict | None = None
    step_time_ms: dict | None = None
    environment: dict | None = None  # adapter environment() of the trained model
    device: str | None = None
    dtype: str | None = None
    autocast: str | None = None  # dtype of the autocast forward; None: the weights' own dtypes
    optimizer: dict | None = None  # {"name", "class", "fused"}
    max_grad_norm: float | None = None
    recipe: dict | None = None
    resumed_at_step: int | None = None  # the checkpoint step this session resumed from; None: ran from step 0
    # Rows of the train split left out for a row-level problem: [{id, where, field, reason}] (data/schema.py)
    skipped_samples: list = field(default_factory=list)
    started_at: str | None = None  # UTC ISO-8601: the session that finished the fine-tune began
    finished_at: str | None = None


@dataclass(frozen=True)
class RunResult(Record):
    """result.json (engine/bench.py `run_bench`; runners/local.py adds "finetune")."""

    FILE: ClassVar[str] = "result.json"
    VERSIONED: ClassVar[bool] = True

    schema_version: int
    run_id: str
    spec: dict  # RunSpec.to_dict() plus config_hash
    metrics: dict | None = None
    # Per subset of the benchmark card's `subsets:` column: {name: {"n": count, metric: value}}
    subset_metrics: dict | None = None
    metric_info: dict | None = None
    num_samples: int | None = None
    latency: LatencySummary | None = None
    memory: dict | None = None
    speed_factors: dict | None = None
    warmup_ms: float | None = None
    merge_ms: float | None = None
    session_wall_s: float | None = None
    resumed_samples: int | None = None
    # Samples asked for but not scored: [{id, where, field, reason}], at load (data/schema.py) or at decode
    skipped_samples: list = field(default_factory=list)
    oom_retries: list | None = None  # [{batch_index, from, to}]: batches this session halved after a CUDA OOM
    shards: list | None = None  # harness/shards.py: each data-parallel shard's latency with its node and GPU
    manifest: Manifest | None = None
    finetune: TrainingRecord | None = None
    started_at: str | None = None  # UTC ISO-8601: this session's bench began (model loaded; resumed_samples earlier)
    finished_at: str | None = None
